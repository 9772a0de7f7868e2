//! The detection normalization as a benchmark workload, identical in wasm and native builds:
//! parse incidents from a page's JSON text, expand them into rows, serialize the rows.

use serde_json::{Value, json};

use crate::params::Api;
use crate::rows::detection_rows;

/// The JSON text of one legacy incident with `alerts` alerts, in the API's shape.
pub fn page(alerts: usize) -> String {
    let alert = |n: usize| {
        json!({
            "alertId": format!("da637349914833441527_{n:09}"), "incidentId": 924521,
            "serviceSource": "MicrosoftDefenderATP", "creationTime": "2020-09-06T12:18:03.3285366Z",
            "lastUpdatedTime": "2020-09-06T12:18:04.2566667Z", "resolvedTime": null,
            "firstActivity": "2020-09-06T12:15:07.7272048Z", "lastActivity": "2020-09-06T12:15:07.7272048Z",
            "title": "'Mimikatz' hacktool was detected",
            "description": "Readily available tools, such as hacking programs, can be used by unauthorized individuals to spy on users.",
            "category": "Malware", "status": "New", "severity": "Low", "investigationId": null,
            "investigationState": "UnsupportedOs", "classification": null, "determination": null,
            "detectionSource": "WindowsDefenderAv", "assignedTo": null, "actorName": null,
            "threatFamilyName": "Mimikatz", "mitreTechniques": ["T1003.001"],
            "devices": [{"mdatpDeviceId": "24c222b0b60fe148eeece49ac83910cc6a7ef491", "deviceDnsName": "user5cx.middleeast.corp.contoso.com", "osPlatform": "WindowsServer2016", "osBuild": 14393, "healthStatus": "Active", "riskScore": "High"}],
            "entities": [{"entityType": "User", "accountName": "admin", "domainName": "corp.contoso.com", "userPrincipalName": "admin@contoso.com"}, {"entityType": "File", "sha1": "5ef4e5c3e6b5a8a7f0a3b2b1c2d3e4f5a6b7c8d9", "fileName": "mimikatz.exe", "filePath": "C:\\\\Temp"}]
        })
    };
    json!({
        "incidentId": 924521, "incidentUri": "https://security.microsoft.com/incidents/924521",
        "redirectIncidentId": null, "incidentName": "'Mimikatz' hacktool was detected on one endpoint",
        "createdTime": "2020-09-06T12:18:03.6266667Z", "lastUpdateTime": "2020-09-06T12:18:03.81Z",
        "assignedTo": null, "classification": "Unknown", "determination": "NotAvailable",
        "status": "Active", "severity": "Low", "tags": [], "comments": [],
        "alerts": (0..alerts).map(alert).collect::<Vec<Value>>(),
    })
    .to_string()
}

/// Parses `incident_json` `incidents` times, expands each into rows and serializes them;
/// returns (rows, bytes of row JSON), so the work cannot be optimized away.
pub fn normalize(incident_json: &str, incidents: usize) -> (u64, u64) {
    let mut rows = 0u64;
    let mut bytes = 0u64;
    for _ in 0..incidents {
        let Ok(incident) = serde_json::from_str::<Value>(incident_json) else {
            continue;
        };
        for row in detection_rows(&incident, Api::Defender) {
            rows += 1;
            bytes += Value::Object(row).to_string().len() as u64;
        }
    }
    (rows, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workload_gives_one_row_per_alert() {
        let (rows, bytes) = normalize(&page(5), 3);
        assert_eq!(rows, 15);
        assert!(bytes > 15 * 500);
    }
}
