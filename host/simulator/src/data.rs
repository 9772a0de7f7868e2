//! The simulator's incidents: generated from a seed, in the Defender XDR API's shape, and
//! translated to Microsoft Graph's shape for the Graph endpoints.
//!
//! Shapes follow Microsoft's published examples: legacy incidents carry `incidentId`,
//! `incidentUri`, PascalCase enums and `alerts` with `devices` and `entities`; Graph incidents
//! carry string ids, `displayName`, `incidentWebUrl`, camelCase enums and `alerts` via `$expand`.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

const NAMES: &[&str] = &[
    "Ransomware activity",
    "'Mimikatz' hacktool was detected on one endpoint",
    "Multi-stage incident involving Initial access & Command and control",
    "Suspicious PowerShell command line on one endpoint",
    "Email messages containing malicious URL removed after delivery",
    "Impossible travel activity involving one user",
    "Suspicious inbox manipulation rule",
    "Credential access incident on multiple endpoints",
];
const COMMENTS: &[&str] = &[
    "Escalated to tier 2: the same hash was seen on two more endpoints.",
    "User confirmed they did not open the attachment; device isolated as a precaution.",
    "Benign: scheduled IT automation, see change ticket CHG0041173.",
];
const ANALYSTS: &[&str] = &[
    "secop1@contoso.com",
    "secop2@contoso.com",
    "KaiC@contoso.onmicrosoft.com",
];
const CATEGORIES: &[&str] = &[
    "InitialAccess",
    "Execution",
    "Persistence",
    "CredentialAccess",
    "Malware",
    "Ransomware",
    "SuspiciousActivity",
    "CommandAndControl",
    "Impact",
    "LateralMovement",
    "Discovery",
];
const TECHNIQUES: &[&str] = &[
    "T1059.001",
    "T1003.001",
    "T1566.001",
    "T1486",
    "T1071.001",
    "T1078",
];
/// (legacy serviceSource, legacy detectionSource, title) triples seen in real exports.
const SOURCES: &[(&str, &str, &str)] = &[
    (
        "MicrosoftDefenderATP",
        "WindowsDefenderAv",
        "'Mimikatz' hacktool was detected",
    ),
    (
        "MicrosoftDefenderATP",
        "WindowsDefenderAtp",
        "Suspicious PowerShell command line",
    ),
    (
        "MicrosoftCloudAppSecurity",
        "MCAS",
        "Impossible travel activity",
    ),
    (
        "OfficeATP",
        "OfficeATP",
        "Email messages containing malicious URL removed after delivery",
    ),
];

/// Legacy ↔ Graph spellings of `serviceSource`.
pub const SERVICE_SOURCES: &[(&str, &str)] = &[
    ("MicrosoftDefenderATP", "microsoftDefenderForEndpoint"),
    ("MicrosoftCloudAppSecurity", "microsoftDefenderForCloudApps"),
    ("OfficeATP", "microsoftDefenderForOffice365"),
];
/// Legacy ↔ Graph spellings of `detectionSource`.
pub const DETECTION_SOURCES: &[(&str, &str)] = &[
    ("WindowsDefenderAv", "antivirus"),
    ("WindowsDefenderAtp", "microsoftDefenderForEndpoint"),
    ("MCAS", "microsoftDefenderForCloudApps"),
    ("OfficeATP", "microsoftDefenderForOffice365"),
];

/// Formats like the API does: seven fractional digits and `Z`.
pub fn api_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S.%7fZ").to_string()
}

/// How much an incident carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Detail {
    /// Up to four alerts, each with at most one device and two entities (about 2 KB an
    /// incident): quick to serve and to read in tests.
    #[default]
    Compact,
    /// Shaped like a busy production tenant: three to seven alerts (one incident in ten has
    /// twelve), each with a device and two to four entities (processes with their command lines,
    /// files with their hashes, addresses, URLs, mailboxes, registry values; Graph: evidence),
    /// and analysts' comments; 7 to 10 KB an incident on average.
    Realistic,
}

/// Generates `count` incidents (oldest first), all created within the 23 hours before `anchor`.
pub fn generate(
    count: usize,
    seed: u64,
    anchor: Timestamp,
    tenant_id: &str,
    detail: Detail,
) -> Vec<Value> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let span_ms = 23 * 3600 * 1000i64;
    (0..count)
        .map(|i| {
            let offset = span_ms - (span_ms * i as i64 / count.max(1) as i64);
            let created = anchor - SignedDuration::from_millis(offset)
                + SignedDuration::from_millis(rng.i64(0..1000));
            incident(
                &mut rng,
                100_001 + i as u64,
                created,
                anchor,
                tenant_id,
                detail,
            )
        })
        .collect()
}

/// One incident with id `id`, created at `created`, last updated no later than `anchor`.
pub fn incident(
    rng: &mut fastrand::Rng,
    id: u64,
    created: Timestamp,
    anchor: Timestamp,
    tenant_id: &str,
    detail: Detail,
) -> Value {
    let updated = (created + SignedDuration::from_secs(rng.i64(0..3600))).min(anchor);
    let roll = rng.u32(0..100);
    let status = match roll {
        0..=39 => "Active",
        40..=59 => "InProgress",
        60..=89 => "Resolved",
        _ => "Redirected",
    };
    // One in twenty incidents has no severity assigned yet.
    let choices = if rng.u32(0..20) == 0 { 5 } else { 4 };
    let severity = ["Informational", "Low", "Medium", "High", "UnSpecified"][rng.usize(0..choices)];
    let (classification, determination) = if status == "Resolved" {
        match rng.u32(0..3) {
            0 => ("TruePositive", "Malware"),
            1 => ("FalsePositive", "Other"),
            _ => ("InformationalExpectedActivity", "SecurityTesting"),
        }
    } else {
        ("Unknown", "NotAvailable")
    };
    let alert_count = match detail {
        _ if status == "Redirected" => 0,
        Detail::Compact if rng.u32(0..20) == 0 => 0,
        Detail::Compact => rng.usize(1..=4),
        Detail::Realistic if rng.u32(0..10) == 0 => 12,
        Detail::Realistic => rng.usize(3..=7),
    };
    let alerts: Vec<Value> = (0..alert_count)
        .map(|n| {
            let mut alert = alert(rng, id, n, created, updated);
            if detail == Detail::Realistic {
                alert["entities"] = json!(entities(rng, created));
            }
            alert
        })
        .collect();
    let comments: Vec<Value> = match detail {
        Detail::Compact => Vec::new(),
        Detail::Realistic => (0..rng.usize(0..=3))
            .map(|n| {
                json!({
                    "comment": COMMENTS[rng.usize(0..COMMENTS.len())],
                    "createdBy": ANALYSTS[rng.usize(0..ANALYSTS.len())],
                    "createdTime": api_time((created + SignedDuration::from_secs(600 * (n as i64 + 1))).min(anchor)),
                })
            })
            .collect(),
    };
    json!({
        "incidentId": id,
        "incidentUri": format!("https://security.microsoft.com/incidents/{id}?tid={tenant_id}"),
        "redirectIncidentId": if status == "Redirected" { json!(id + 7_000_000) } else { Value::Null },
        "incidentName": NAMES[rng.usize(0..NAMES.len())],
        "createdTime": api_time(created),
        "lastUpdateTime": api_time(updated),
        "assignedTo": if rng.bool() { json!(ANALYSTS[rng.usize(0..ANALYSTS.len())]) } else { Value::Null },
        "classification": classification,
        "determination": determination,
        "status": status,
        "severity": severity,
        "tags": if rng.u32(0..4) == 0 { json!(["Demo"]) } else { json!([]) },
        "comments": comments,
        "alerts": alerts,
    })
}

/// Two to four entities of the kinds a real alert carries, in the legacy API's shape.
fn entities(rng: &mut fastrand::Rng, created: Timestamp) -> Vec<Value> {
    let user = rng.u32(1..200);
    let hex = |rng: &mut fastrand::Rng, digits: usize| -> String {
        (0..digits)
            .map(|_| char::from(b"0123456789abcdef"[rng.usize(0..16)]))
            .collect()
    };
    let process_time = api_time(created - SignedDuration::from_secs(rng.i64(60..3600)));
    let (first, count) = (rng.usize(0..7), rng.usize(2..=4));
    (first..first + count)
        .map(|k| match k % 7 {
            0 => json!({
                "entityType": "User", "accountName": format!("user{user}"),
                "domainName": "CORP", "userSid": format!("S-1-5-21-1004336348-1177238915-682003330-{}", 1000 + user),
                "aadUserId": format!("{}-{}-4{}-8{}-{}", hex(rng, 8), hex(rng, 4), hex(rng, 3), hex(rng, 3), hex(rng, 12)),
                "userPrincipalName": format!("user{user}@contoso.com"),
            }),
            1 => json!({
                "entityType": "Process", "fileName": "powershell.exe",
                "filePath": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0",
                "processId": rng.u32(1000..30000), "parentProcessId": rng.u32(1000..30000),
                "processCommandLine": format!("powershell.exe -NoProfile -ExecutionPolicy Bypass -EncodedCommand {}", hex(rng, 64)),
                "processCreationTime": process_time, "parentProcessCreationTime": process_time,
                "sha1": hex(rng, 40), "sha256": hex(rng, 64),
            }),
            2 => json!({
                "entityType": "File", "fileName": format!("invoice_{}.docm", rng.u32(1000..9999)),
                "filePath": format!("C:\\Users\\user{user}\\AppData\\Local\\Temp"),
                "sha1": hex(rng, 40), "sha256": hex(rng, 64),
            }),
            3 => json!({ "entityType": "Ip", "ipAddress": format!("198.51.100.{}", rng.u8(1..255)) }),
            4 => json!({ "entityType": "Url", "url": format!("https://login-contoso.example/{}/signin?session={}", hex(rng, 8), hex(rng, 24)) }),
            5 => json!({
                "entityType": "MailMessage", "sender": "billing@fabrikam.example",
                "recipient": format!("user{user}@contoso.com"),
                "subject": "Overdue invoice – action required",
                "deliveryAction": "Delivered", "clusterBy": null,
            }),
            _ => json!({
                "entityType": "Registry",
                "registryHive": "HKEY_CURRENT_USER",
                "registryKey": "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run",
                "registryValueType": "String",
                "registryValue": format!("C:\\Users\\user{user}\\AppData\\Roaming\\{}.exe", hex(rng, 8)),
            }),
        })
        .collect()
}

/// The Graph `evidence` of a legacy alert's entities.
fn evidence(alert: &Value) -> Vec<Value> {
    let created = &alert["creationTime"];
    let entities = alert["entities"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    entities
        .iter()
        .map(|entity| {
            let kind = entity["entityType"].as_str().unwrap_or_default();
            let odata = match kind {
                "User" => "userEvidence",
                "Process" => "processEvidence",
                "File" => "fileEvidence",
                "Ip" => "ipEvidence",
                "Url" => "urlEvidence",
                "MailMessage" => "analyzedMessageEvidence",
                "Registry" => "registryValueEvidence",
                _ => "evidence",
            };
            let mut evidence = json!({
                "@odata.type": format!("#microsoft.graph.security.{odata}"),
                "createdDateTime": created,
                "verdict": "suspicious",
                "remediationStatus": "none",
                "remediationStatusDetails": null,
                "roles": [],
                "tags": [],
            });
            if let (Some(target), Some(fields)) = (evidence.as_object_mut(), entity.as_object()) {
                for (key, value) in fields.iter().filter(|(key, _)| *key != "entityType") {
                    target.insert(key.clone(), value.clone());
                }
            }
            evidence
        })
        .collect()
}

fn alert(
    rng: &mut fastrand::Rng,
    incident: u64,
    n: usize,
    created: Timestamp,
    updated: Timestamp,
) -> Value {
    let (service, detection, title) = SOURCES[rng.usize(0..SOURCES.len())];
    let first = created - SignedDuration::from_secs(rng.i64(60..7200));
    let last = first + SignedDuration::from_secs(rng.i64(0..600));
    let techniques: Vec<&str> = TECHNIQUES
        .iter()
        .copied()
        .filter(|_| rng.u32(0..4) == 0)
        .collect();
    let status = ["New", "InProgress", "Resolved"][rng.usize(0..3)];
    let severity = ["Informational", "Low", "Medium", "High"][rng.usize(0..4)];
    let devices = if service == "MicrosoftDefenderATP" {
        json!([{
            "mdatpDeviceId": format!("{:040x}", rng.u128(..) & ((1u128 << 120) - 1)),
            "aadDeviceId": null,
            "deviceDnsName": format!("host{}.corp.contoso.com", rng.u32(1..500)),
            "osPlatform": "Windows10",
            "version": "22H2",
            "osProcessor": "x64",
            "osBuild": 19045,
            "healthStatus": "Active",
            "riskScore": "High",
            "rbacGroupName": "WDATP-Ring0",
            "rbacGroupId": 9,
            "firstSeen": "2025-02-06T14:16:01.9330135Z"
        }])
    } else {
        json!([])
    };
    json!({
        "alertId": format!("da{:018}_{:09}", incident * 1000 + n as u64, rng.u32(0..1_000_000_000)),
        "providerAlertId": format!("da{:018}", incident * 1000 + n as u64),
        "incidentId": incident,
        "serviceSource": service,
        "creationTime": api_time(created),
        "lastUpdatedTime": api_time(updated),
        "resolvedTime": if status == "Resolved" { json!(api_time(updated)) } else { Value::Null },
        "firstActivity": api_time(first),
        "lastActivity": api_time(last),
        "title": title,
        "description": format!("{title} on a device or account of the tenant."),
        "category": CATEGORIES[rng.usize(0..CATEGORIES.len())],
        "status": status,
        "severity": severity,
        "investigationId": null,
        "investigationState": "UnsupportedAlertType",
        "classification": null,
        "determination": null,
        "detectionSource": detection,
        "detectorId": format!("{:08x}-0000-4000-8000-{:012x}", rng.u32(..), rng.u64(..) & 0xffff_ffff_ffff),
        "assignedTo": null,
        "actorName": null,
        "threatFamilyName": null,
        "mitreTechniques": techniques,
        "devices": devices,
        "entities": [{
            "entityType": "User",
            "accountName": format!("user{}", rng.u32(1..200)),
            "domainName": "corp.contoso.com",
            "userPrincipalName": format!("user{}@contoso.com", rng.u32(1..200))
        }, {
            "entityType": "Ip",
            "ipAddress": format!("203.0.113.{}", rng.u8(1..255))
        }]
    })
}

/// `Active` → `active`, `InProgress` → `inProgress`, `UnSpecified` → `unknown` (severity).
pub fn camel(value: &Value) -> Value {
    match value.as_str() {
        Some("UnSpecified") => json!("unknown"),
        Some(text) => {
            let mut chars = text.chars();
            match chars.next() {
                Some(first) => json!(format!("{}{}", first.to_ascii_lowercase(), chars.as_str())),
                None => json!(""),
            }
        }
        None => Value::Null,
    }
}

fn translate(value: &Value, table: &[(&str, &str)]) -> Value {
    match value.as_str() {
        Some(text) => json!(
            table
                .iter()
                .find(|(legacy, _)| *legacy == text)
                .map(|(_, graph)| *graph)
                .unwrap_or(text)
        ),
        None => Value::Null,
    }
}

/// The Graph `security/incident` form of a legacy incident; alerts only when `expand`, with
/// evidence only in [`Detail::Realistic`].
pub fn to_graph(incident: &Value, tenant_id: &str, expand: bool, detail: Detail) -> Value {
    let id = incident["incidentId"].to_string();
    let url = incident["incidentUri"].clone();
    let mut graph = json!({
        "@odata.type": "#microsoft.graph.security.incident",
        "id": id,
        "tenantId": tenant_id,
        "displayName": incident["incidentName"],
        "incidentWebUrl": url,
        "redirectIncidentId": match &incident["redirectIncidentId"] { Value::Null => Value::Null, v => json!(v.to_string()) },
        "createdDateTime": incident["createdTime"],
        "lastUpdateDateTime": incident["lastUpdateTime"],
        "assignedTo": incident["assignedTo"],
        "classification": camel(&incident["classification"]),
        "determination": camel(&incident["determination"]),
        "status": camel(&incident["status"]),
        "severity": camel(&incident["severity"]),
        "customTags": incident["tags"],
        "systemTags": [],
        "comments": incident["comments"].as_array().map(Vec::as_slice).unwrap_or_default().iter().map(|c| json!({
            "comment": c["comment"], "createdByDisplayName": c["createdBy"], "createdDateTime": c["createdTime"],
        })).collect::<Vec<_>>(),
        "description": "",
    });
    if expand {
        let alerts: Vec<Value> = incident["alerts"]
            .as_array()
            .map(|alerts| {
                alerts
                    .iter()
                    .map(|a| graph_alert(a, &id, &url, tenant_id, detail))
                    .collect()
            })
            .unwrap_or_default();
        graph["alerts"] = json!(alerts);
    }
    graph
}

fn graph_alert(
    alert: &Value,
    incident_id: &str,
    incident_url: &Value,
    tenant_id: &str,
    detail: Detail,
) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.security.alert",
        "id": alert["alertId"],
        "providerAlertId": alert["providerAlertId"],
        "incidentId": incident_id,
        "status": camel(&alert["status"]),
        "severity": camel(&alert["severity"]),
        "classification": camel(&alert["classification"]),
        "determination": camel(&alert["determination"]),
        "serviceSource": translate(&alert["serviceSource"], SERVICE_SOURCES),
        "detectionSource": translate(&alert["detectionSource"], DETECTION_SOURCES),
        "detectorId": alert["detectorId"],
        "tenantId": tenant_id,
        "title": alert["title"],
        "description": alert["description"],
        "category": alert["category"],
        "assignedTo": alert["assignedTo"],
        "alertWebUrl": format!("https://security.microsoft.com/alerts/{}", alert["alertId"].as_str().unwrap_or_default()),
        "incidentWebUrl": incident_url,
        "actorDisplayName": alert["actorName"],
        "threatFamilyName": alert["threatFamilyName"],
        "mitreTechniques": alert["mitreTechniques"],
        "createdDateTime": alert["creationTime"],
        "lastUpdateDateTime": alert["lastUpdatedTime"],
        "resolvedDateTime": alert["resolvedTime"],
        "firstActivityDateTime": alert["firstActivity"],
        "lastActivityDateTime": alert["lastActivity"],
        "comments": [],
        "evidence": match detail {
            Detail::Compact => Vec::new(),
            Detail::Realistic => evidence(alert),
        },
        "systemTags": [],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_incidents() {
        let anchor: Timestamp = "2026-11-27T06:00:00Z".parse().unwrap();
        assert_eq!(
            generate(20, 7, anchor, "t", Detail::Compact),
            generate(20, 7, anchor, "t", Detail::Compact)
        );
        assert_ne!(
            generate(20, 7, anchor, "t", Detail::Compact),
            generate(20, 8, anchor, "t", Detail::Compact)
        );
    }

    #[test]
    fn redirected_incidents_have_no_alerts_and_a_redirect_id() {
        let anchor: Timestamp = "2026-11-27T06:00:00Z".parse().unwrap();
        let incidents = generate(200, 1, anchor, "t", Detail::Compact);
        let redirected: Vec<&Value> = incidents
            .iter()
            .filter(|i| i["status"] == "Redirected")
            .collect();
        assert!(!redirected.is_empty());
        for i in redirected {
            assert_eq!(i["alerts"], json!([]));
            assert!(i["redirectIncidentId"].is_u64());
        }
    }

    #[test]
    fn realistic_incidents_average_seven_to_ten_kilobytes_and_five_alerts() {
        let anchor: Timestamp = "2026-11-27T06:00:00Z".parse().unwrap();
        let incidents = generate(400, 3, anchor, "t", Detail::Realistic);
        let alerts: usize = incidents
            .iter()
            .map(|i| i["alerts"].as_array().map_or(0, Vec::len))
            .sum();
        let legacy = serde_json::to_string(&incidents).unwrap().len() / 400;
        let graph: Vec<Value> = incidents
            .iter()
            .map(|i| to_graph(i, "t", true, Detail::Realistic))
            .collect();
        let graph = serde_json::to_string(&graph).unwrap().len() / 400;
        assert!((4.0..6.0).contains(&(alerts as f64 / 400.0)), "{alerts}");
        assert!((7_000..10_000).contains(&legacy), "{legacy}");
        assert!((7_000..15_000).contains(&graph), "{graph}");
        assert!(
            incidents
                .iter()
                .any(|i| i["alerts"].as_array().map_or(0, Vec::len) == 12)
        );
    }

    #[test]
    fn graph_enums_are_camel_case() {
        assert_eq!(camel(&json!("InProgress")), json!("inProgress"));
        assert_eq!(camel(&json!("UnSpecified")), json!("unknown"));
        assert_eq!(camel(&Value::Null), Value::Null);
    }
}
