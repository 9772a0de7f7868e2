//! Reports everything a guest can learn: its connection's info, its environment, and a whole
//! API answer (status, headers, body). A secret or token must appear in none of it.
use skillhost_guest::{Guest, SkillError, SkillInfo};

struct ConnectionProbe;

impl Guest for ConnectionProbe {
    fn describe() -> SkillInfo {
        let mut info = SkillInfo::new(
            "connection-probe",
            env!("CARGO_PKG_VERSION"),
            "Dumps what the guest can see.",
        );
        info.services = vec!["defender".to_string()];
        info
    }

    fn invoke(_input: String) -> Result<String, SkillError> {
        let c = skillhost_guest::connection::info();
        let answer = skillhost_guest::get("defender", "/api/incidents?$top=1");
        let answer = match answer {
            Ok(r) => serde_json::json!({
                "status": r.status,
                "headers": r.headers,
                "body": String::from_utf8_lossy(&r.body),
            }),
            Err(e) => serde_json::json!({ "error": format!("{e:?}") }),
        };
        Ok(serde_json::json!({
            "connection": {
                "name": c.name, "tenant": c.tenant, "cloud": c.cloud,
                "api": match c.api {
                    skillhost_guest::ApiFlavour::Defender => "defender",
                    skillhost_guest::ApiFlavour::Graph => "graph",
                },
                "services": c.services,
            },
            "env": std::env::vars().collect::<Vec<_>>(),
            "answer": answer,
        })
        .to_string())
    }
}

skillhost_guest::export_skill!(ConnectionProbe);
