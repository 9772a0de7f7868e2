//! Tries to connect to the TCP address in its `addr` parameter; reports the outcome.
use skillhost_guest::{Guest, ParamKind, ParamSpec, SkillError, SkillInfo};

struct TcpProbe;

impl Guest for TcpProbe {
    fn describe() -> SkillInfo {
        let mut info = SkillInfo::new(
            "tcp-probe",
            env!("CARGO_PKG_VERSION"),
            "Opens a TCP connection.",
        );
        info.parameters = vec![ParamSpec::new(
            "addr",
            ParamKind::Text,
            true,
            "host:port to connect to",
        )];
        info
    }

    fn invoke(input: String) -> Result<String, SkillError> {
        let input: serde_json::Value =
            serde_json::from_str(&input).map_err(|e| SkillError::Internal(e.to_string()))?;
        let addr = input["addr"].as_str().unwrap_or_default();
        let connect = match std::net::TcpStream::connect(addr) {
            Ok(_) => "connected".to_string(),
            Err(e) => format!("error: {e}"),
        };
        let lookup = match std::net::ToSocketAddrs::to_socket_addrs(&("localhost", 80)) {
            Ok(_) => "resolved".to_string(),
            Err(e) => format!("error: {e}"),
        };
        Ok(serde_json::json!({ "connect": connect, "lookup": lookup }).to_string())
    }
}

skillhost_guest::export_skill!(TcpProbe);
