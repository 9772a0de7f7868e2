//! Imports an interface no host provides.
wit_bindgen::generate!({ world: "component", path: "wit", generate_all });

struct Component;

impl Guest for Component {
    fn run() {
        acme::evil::backdoor::open();
    }
}

export!(Component);
