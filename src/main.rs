fn main() {
    if std::env::args().nth(1).as_deref() == Some("crds") {
        print!("{}", portcullis::api::crds_yaml());
    }
}
