//! What the host knows about Microsoft (`skillhost_upstream::providers::microsoft`) and what the
//! Defender skills and the simulator carry on their side of the boundaries stay the same.

use skillhost_guest::SkillError;
use skillhost_simulator::SimulatorConfig;
use skillhost_upstream::providers::microsoft::{Api, guidance};

const APIS: [(Api, defender::Api); 2] = [
    (Api::Defender, defender::Api::Defender),
    (Api::Graph, defender::Api::Graph),
];

#[test]
fn the_skills_name_the_permission_and_service_the_host_names_for_every_api() {
    for (host, skill) in APIS {
        assert_eq!(skill.permission(), host.permission(), "{host:?}");
        assert_eq!(skill.service(), host.service(), "{host:?}");
    }
}

#[test]
fn a_403_names_the_same_permission_in_the_skills_error_and_the_hosts_hint() {
    for (host, skill) in APIS {
        let SkillError::Forbidden(message) = defender::api_error(skill, 403, b"{}") else {
            panic!("a 403 of {host:?} is not mapped to forbidden");
        };
        assert_eq!(
            message,
            format!(
                "the application lacks the {} permission (403): {{}}",
                host.permission()
            )
        );
        assert_eq!(
            guidance(403, Some(host)),
            format!(
                "grant the application permission {} ({}) and have an administrator grant admin \
                 consent in Entra ID",
                host.permission(),
                host.permission_api_name()
            )
        );
    }
}

#[test]
fn the_simulator_grants_exactly_the_permissions_the_host_requires() {
    assert_eq!(
        SimulatorConfig::default().roles,
        vec![
            Api::Defender.permission().to_string(),
            Api::Graph.permission().to_string()
        ]
    );
}
