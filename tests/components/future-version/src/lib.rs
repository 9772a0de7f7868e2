//! Exports `skillhost:skill/guest@9.0.0`, a contract version this host does not know.
wit_bindgen::generate!({ world: "component", path: "wit" });

struct Component;

impl exports::skillhost::skill::guest::Guest for Component {
    fn describe() -> String {
        String::from("from the future")
    }
}

export!(Component);
