//! Imports `wasi:http/outgoing-handler`: a way around the host's HTTP policy, so it must be refused.
wit_bindgen::generate!({ world: "component", path: "wit", generate_all });

struct Component;

impl Guest for Component {
    fn run() {
        wasi::http::outgoing_handler::handle();
    }
}

export!(Component);
