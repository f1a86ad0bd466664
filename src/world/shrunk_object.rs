use super::{
    EndpointSliceObj, HasMeta, IngressClassObj, IngressObj, Kind, KongConsumerObj, KongPluginObj, Object, ObjectError,
    ObjectRef, SecretObj, ServiceObj,
};

/// One object in its shrunk form. Sources shrink objects as they arrive, so
/// nothing they buffer (a watch's initial list, say) holds Secret data.
#[derive(Clone, Debug, PartialEq)]
pub enum Shrunk {
    Ingress(IngressObj),
    IngressClass(IngressClassObj),
    Service(ServiceObj),
    EndpointSlice(EndpointSliceObj),
    Secret(SecretObj),
    KongConsumer(KongConsumerObj),
    KongPlugin(KongPluginObj),
    KongClusterPlugin(KongPluginObj),
}

impl Shrunk {
    pub fn from_object(obj: &Object) -> Result<Self, ObjectError> {
        Ok(match obj {
            Object::Ingress(o) => Shrunk::Ingress(IngressObj::shrink(o)?),
            Object::IngressClass(o) => Shrunk::IngressClass(IngressClassObj::shrink(o)?),
            Object::Service(o) => Shrunk::Service(ServiceObj::shrink(o)?),
            Object::EndpointSlice(o) => Shrunk::EndpointSlice(EndpointSliceObj::shrink(o)?),
            Object::Secret(o) => Shrunk::Secret(SecretObj::shrink(o)?),
            Object::KongConsumer(o) => Shrunk::KongConsumer(KongConsumerObj::shrink(o)?),
            Object::KongPlugin(o) => Shrunk::KongPlugin(KongPluginObj::shrink_namespaced(o)?),
            Object::KongClusterPlugin(o) => Shrunk::KongClusterPlugin(KongPluginObj::shrink_cluster(o)?),
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
    /// (`creationTimestamp` in local mode).
    pub fn meta_mut(&mut self) -> &mut super::Meta {
        match self {
            Shrunk::Ingress(o) => &mut o.meta,
            Shrunk::IngressClass(o) => &mut o.meta,
            Shrunk::Service(o) => &mut o.meta,
            Shrunk::EndpointSlice(o) => &mut o.meta,
            Shrunk::Secret(o) => &mut o.meta,
            Shrunk::KongConsumer(o) => &mut o.meta,
            Shrunk::KongPlugin(o) | Shrunk::KongClusterPlugin(o) => &mut o.meta,
        }
    }

    pub fn object_ref(&self) -> ObjectRef {
        self.meta().object_ref(self.kind())
    }
}
