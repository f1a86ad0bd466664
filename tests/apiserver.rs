//! The test API server against the real kube::Client.

#[path = "support/apiserver/mod.rs"]
mod apiserver;

#[tokio::test]
async fn starts() {
    let server = apiserver::ApiServer::start().await;
    let version = server.client().apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");
}
