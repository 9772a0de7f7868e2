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

/// Generates `count` incidents (oldest first), all created within the 23 hours before `anchor`.
pub fn generate(count: usize, seed: u64, anchor: Timestamp, tenant_id: &str) -> Vec<Value> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let span_ms = 23 * 3600 * 1000i64;
    (0..count)
        .map(|i| {
            let offset = span_ms - (span_ms * i as i64 / count.max(1) as i64);
            let created = anchor - SignedDuration::from_millis(offset)
                + SignedDuration::from_millis(rng.i64(0..1000));
            incident(&mut rng, 100_001 + i as u64, created, anchor, tenant_id)
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
    let alert_count = if status == "Redirected" || rng.u32(0..20) == 0 {
        0
    } else {
        rng.usize(1..=4)
    };
    let alerts: Vec<Value> = (0..alert_count)
        .map(|n| alert(rng, id, n, created, updated))
        .collect();
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
        "comments": [],
        "alerts": alerts,
    })
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

/// The Graph `security/incident` form of a legacy incident; alerts only when `expand`.
pub fn to_graph(incident: &Value, tenant_id: &str, expand: bool) -> Value {
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
        "comments": incident["comments"],
        "description": "",
    });
    if expand {
        let alerts: Vec<Value> = incident["alerts"]
            .as_array()
            .map(|alerts| {
                alerts
                    .iter()
                    .map(|a| graph_alert(a, &id, &url, tenant_id))
                    .collect()
            })
            .unwrap_or_default();
        graph["alerts"] = json!(alerts);
    }
    graph
}

fn graph_alert(alert: &Value, incident_id: &str, incident_url: &Value, tenant_id: &str) -> Value {
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
        "evidence": [],
        "systemTags": [],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_incidents() {
        let anchor: Timestamp = "2026-11-27T06:00:00Z".parse().unwrap();
        assert_eq!(generate(20, 7, anchor, "t"), generate(20, 7, anchor, "t"));
        assert_ne!(generate(20, 7, anchor, "t"), generate(20, 8, anchor, "t"));
    }

    #[test]
    fn redirected_incidents_have_no_alerts_and_a_redirect_id() {
        let anchor: Timestamp = "2026-11-27T06:00:00Z".parse().unwrap();
        let incidents = generate(200, 1, anchor, "t");
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
    fn graph_enums_are_camel_case() {
        assert_eq!(camel(&json!("InProgress")), json!("inProgress"));
        assert_eq!(camel(&json!("UnSpecified")), json!("unknown"));
        assert_eq!(camel(&Value::Null), Value::Null);
    }
}
