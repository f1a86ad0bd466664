use std::sync::Arc;

use super::{
    EndpointSliceObj, HasMeta, IngressClassObj, IngressObj, Kind, KongConsumerObj, KongPluginObj, Object, ObjectError,
    ObjectRef, SecretObj, ServiceObj,
};

/// One object in its shrunk form. Sources shrink objects as they arrive, so
/// nothing they buffer (a watch's initial list, say) holds Secret data.
/// Each object is in the block the World will keep: storing it copies
/// nothing, and a buffered object takes its own size, not the largest
/// kind's (a manifests folder holds 200,000 of them until its file parses).
#[derive(Clone, Debug, PartialEq)]
pub enum Shrunk {
    Ingress(Arc<IngressObj>),
    IngressClass(Arc<IngressClassObj>),
    Service(Arc<ServiceObj>),
    EndpointSlice(Arc<EndpointSliceObj>),
    Secret(Arc<SecretObj>),
    KongConsumer(Arc<KongConsumerObj>),
    KongPlugin(Arc<KongPluginObj>),
    KongClusterPlugin(Arc<KongPluginObj>),
}

impl Shrunk {
    pub fn from_object(obj: &Object) -> Result<Self, ObjectError> {
        Ok(match obj {
            Object::Ingress(o) => Shrunk::Ingress(Arc::new(IngressObj::shrink(o)?)),
            Object::IngressClass(o) => Shrunk::IngressClass(Arc::new(IngressClassObj::shrink(o)?)),
            Object::Service(o) => Shrunk::Service(Arc::new(ServiceObj::shrink(o)?)),
            Object::EndpointSlice(o) => Shrunk::EndpointSlice(Arc::new(EndpointSliceObj::shrink(o)?)),
            Object::Secret(o) => Shrunk::Secret(Arc::new(SecretObj::shrink(o)?)),
            Object::KongConsumer(o) => Shrunk::KongConsumer(Arc::new(KongConsumerObj::shrink(o)?)),
            Object::KongPlugin(o) => Shrunk::KongPlugin(Arc::new(KongPluginObj::shrink_namespaced(o)?)),
            Object::KongClusterPlugin(o) => Shrunk::KongClusterPlugin(Arc::new(KongPluginObj::shrink_cluster(o)?)),
        })
    }

    pub fn kind(&self) -> Kind {
        match self {
            Shrunk::Ingress(_) => Kind::Ingress,
            Shrunk::IngressClass(_) => Kind::IngressClass,
            Shrunk::Service(_) => Kind::Service,
            Shrunk::EndpointSlice(_) => Kind::EndpointSlice,
            Shrunk::Secret(_) => Kind::Secret,
            Shrunk::KongConsumer(_) => Kind::KongConsumer,
            Shrunk::KongPlugin(_) => Kind::KongPlugin,
            Shrunk::KongClusterPlugin(_) => Kind::KongClusterPlugin,
        }
    }

    pub fn meta(&self) -> &super::Meta {
        match self {
            Shrunk::Ingress(o) => o.meta(),
            Shrunk::IngressClass(o) => o.meta(),
            Shrunk::Service(o) => o.meta(),
            Shrunk::EndpointSlice(o) => o.meta(),
            Shrunk::Secret(o) => o.meta(),
            Shrunk::KongConsumer(o) => o.meta(),
            Shrunk::KongPlugin(o) | Shrunk::KongClusterPlugin(o) => o.meta(),
        }
    }

    /// For sources that fill in metadata the manifest left out
    /// (`creationTimestamp` in local mode). A freshly shrunk object is not
    /// shared, so this copies nothing.
    pub fn meta_mut(&mut self) -> &mut super::Meta {
        match self {
            Shrunk::Ingress(o) => &mut Arc::make_mut(o).meta,
            Shrunk::IngressClass(o) => &mut Arc::make_mut(o).meta,
            Shrunk::Service(o) => &mut Arc::make_mut(o).meta,
            Shrunk::EndpointSlice(o) => &mut Arc::make_mut(o).meta,
            Shrunk::Secret(o) => &mut Arc::make_mut(o).meta,
            Shrunk::KongConsumer(o) => &mut Arc::make_mut(o).meta,
            Shrunk::KongPlugin(o) | Shrunk::KongClusterPlugin(o) => &mut Arc::make_mut(o).meta,
        }
    }

    pub fn object_ref(&self) -> ObjectRef {
        self.meta().object_ref(self.kind())
    }
}
