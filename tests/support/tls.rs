//! TLS test helpers: a test CA issuing leaf certificates (rcgen), Secret
//! manifests holding them, a rustls client that trusts only that CA, and
//! requests over TLS (HTTP/1.1, or HTTP/2 when ALPN picks it) that also
//! return the certificate the server presented.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{CLIENT_TIMEOUT, Resp, finish};

pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate (PEM and DER) and its private key (PEM).
#[derive(Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl TestCa {
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "Portcullis test CA");
        let key = KeyPair::generate().expect("CA key");
        TestCa { issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate") }
    }

    /// A leaf for `names` (DNS subject alternative names; `*.x` wildcards).
    pub fn issue(&self, names: &[&str]) -> Leaf {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("leaf certificate");
        Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().clone() }
    }

    /// A client trusting only this CA, offering `alpn`.
    pub fn client(&self, alpn: &[&[u8]]) -> Arc<ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.issuer.der().clone()).expect("CA into root store");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

/// A `kubernetes.io/tls` Secret manifest holding `leaf`.
pub fn tls_secret(name: &str, leaf: &Leaf) -> String {
    tls_secret_raw(name, &leaf.cert_pem, &leaf.key_pem)
}

/// A `kubernetes.io/tls` Secret manifest with arbitrary contents.
pub fn tls_secret_raw(name: &str, cert: &str, key: &str) -> String {
    let block = |text: &str| text.trim().lines().map(|l| format!("    {l}\n")).collect::<String>();
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: default\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
        block(cert),
        block(key)
    )
}

/// A TLS handshake with `sni` (an IP address sends no SNI).
pub async fn handshake(
    addr: SocketAddr,
    sni: &str,
    client: &Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let name = match sni.parse::<IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(sni.to_string()).map_err(std::io::Error::other)?,
    };
    let tcp = TcpStream::connect(addr).await?;
    let connect = TlsConnector::from(client.clone()).connect(name, tcp);
    tokio::time::timeout(CLIENT_TIMEOUT, connect).await.map_err(|_| std::io::Error::other("handshake timed out"))?
}

/// The server certificate presented on `stream`.
pub fn peer_leaf(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    let certs = stream.get_ref().1.peer_certificates().expect("server certificates");
    certs.first().expect("a server certificate").clone().into_owned()
}

/// One request over a new TLS connection: HTTP/2 when ALPN chose h2, else
/// HTTP/1.1. Returns the response and the server certificate.
pub async fn send_tls(
    addr: SocketAddr,
    sni: &str,
    client: &Arc<ClientConfig>,
    req: Request<Full<Bytes>>,
) -> (Resp, CertificateDer<'static>) {
    let stream = handshake(addr, sni, client).await.unwrap_or_else(|e| panic!("TLS handshake with {sni}: {e}"));
    let leaf = peer_leaf(&stream);
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let resp = if h2 {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
        tokio::spawn(conn);
        finish(sender.send_request(req)).await
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
        tokio::spawn(conn);
        finish(sender.send_request(req)).await
    };
    (resp, leaf)
}
