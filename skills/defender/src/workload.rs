//! Benchmark workloads, identical in wasm and native builds.
//!
//! - [`page`] and [`normalize`]: one small legacy incident parsed, expanded into rows and
//!   serialized many times (the normalization row of BENCHMARKS.md, wasm against native).
//! - [`incidents`] and [`page_text`]: realistic incidents of either API (several alerts each
//!   carrying devices, entities or evidence, comments and tags; about 7 KB an incident on
//!   average, some with 12 alerts) and the text of a page of them, for the end-to-end paging
//!   benchmark (`examples/rows_bench.rs`).

use serde_json::{Value, json};

use crate::params::Api;

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

/// Parses `incident_json` `incidents` times, expands each into rows and serializes them, the way
/// the detections skill does; returns (rows, bytes of row JSON), so the work cannot be optimized
/// away.
pub fn normalize(incident_json: &str, incidents: usize) -> (u64, u64) {
    let mut rows = 0u64;
    let mut bytes = 0u64;
    for _ in 0..incidents {
        let Ok(incident) = crate::paging::detection_incident(incident_json, Api::Defender) else {
            continue;
        };
        for row in incident.rows.iter() {
            rows += 1;
            bytes += row.len() as u64;
        }
    }
    (rows, bytes)
}

/// [`normalize`] on the reference path: each incident parsed into a `Value`, its rows built as
/// `Value` maps and serialized (what the skills did before the fast path).
pub fn normalize_reference(incident_json: &str, incidents: usize) -> (u64, u64) {
    let mut rows = 0u64;
    let mut bytes = 0u64;
    for _ in 0..incidents {
        let Ok(incident) = serde_json::from_str::<Value>(incident_json) else {
            continue;
        };
        for row in crate::reference::serialized_rows(&incident, Api::Defender) {
            rows += 1;
            bytes += row.len() as u64;
        }
    }
    (rows, bytes)
}

/// A small deterministic generator (SplitMix64), so that workloads need no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

const NAMES: &[&str] = &[
    "Ransomware activity",
    "'Mimikatz' hacktool was detected on one endpoint",
    "Multi-stage incident involving Initial access & Command and control on multiple endpoints reported by multiple sources",
    "Suspicious PowerShell command line on one endpoint",
    "Email messages containing malicious URL removed after delivery\u{200b} involving one user",
    "Impossible travel activity involving one user",
    "Suspicious inbox manipulation rule – \"Move to RSS\" on mailbox of Zoë Müller",
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
    "DefenseEvasion",
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
    "T1027",
    "T1204.002",
];
/// (legacy serviceSource, legacy detectionSource, title, product name).
const SOURCES: &[(&str, &str, &str, &str)] = &[
    (
        "MicrosoftDefenderATP",
        "WindowsDefenderAv",
        "'Mimikatz' hacktool was detected",
        "Microsoft Defender for Endpoint",
    ),
    (
        "MicrosoftDefenderATP",
        "WindowsDefenderAtp",
        "Suspicious PowerShell command line",
        "Microsoft Defender for Endpoint",
    ),
    (
        "MicrosoftCloudAppSecurity",
        "MCAS",
        "Impossible travel activity",
        "Microsoft Defender for Cloud Apps",
    ),
    (
        "OfficeATP",
        "OfficeATP",
        "Email messages containing malicious URL removed after delivery\u{200b}",
        "Microsoft Defender for Office 365",
    ),
];

/// Legacy → Graph spellings of `serviceSource`.
const GRAPH_SERVICE_SOURCES: &[(&str, &str)] = &[
    ("MicrosoftDefenderATP", "microsoftDefenderForEndpoint"),
    ("MicrosoftCloudAppSecurity", "microsoftDefenderForCloudApps"),
    ("OfficeATP", "microsoftDefenderForOffice365"),
];
/// Legacy → Graph spellings of `detectionSource`.
const GRAPH_DETECTION_SOURCES: &[(&str, &str)] = &[
    ("WindowsDefenderAv", "antivirus"),
    ("WindowsDefenderAtp", "microsoftDefenderForEndpoint"),
    ("MCAS", "microsoftDefenderForCloudApps"),
    ("OfficeATP", "microsoftDefenderForOffice365"),
];

const TENANT: &str = "b3c1b5fc-828c-45fa-a1e1-10d74f6d6e9c";

fn time(rng: &mut Rng, day: u64) -> String {
    format!(
        "2026-11-{:02}T{:02}:{:02}:{:02}.{:07}Z",
        20 + day % 8,
        rng.below(24),
        rng.below(60),
        rng.below(60),
        rng.below(10_000_000)
    )
}

fn hex(rng: &mut Rng, digits: usize) -> String {
    let mut out = String::with_capacity(digits);
    while out.len() < digits {
        out.push_str(&format!("{:016x}", rng.next_u64()));
    }
    out.truncate(digits);
    out
}

fn guid(rng: &mut Rng) -> String {
    let h = hex(rng, 32);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn entities(rng: &mut Rng, service: &str, device_id: &str) -> Vec<Value> {
    let user = rng.below(400);
    let mut out = vec![json!({
        "entityType": "User", "accountName": format!("user{user}"), "domainName": "CORP", "userSid": format!("S-1-5-21-1540151660-3530000288-3216649718-{}", 1000 + user),
        "userPrincipalName": format!("user{user}@contoso.com"),
        "deviceId": null
    })];
    match service {
        "MicrosoftDefenderATP" => {
            out.push(json!({
                "entityType": "Process", "sha1": hex(rng, 40),
                "fileName": "powershell.exe", "filePath": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0",
                "processId": rng.below(20000), "processCommandLine": format!("powershell.exe -NoProfile -ExecutionPolicy Bypass -File \"C:\\Users\\user{user}\\AppData\\Local\\Temp\\run.ps1\""),
                "processCreationTime": time(rng, 1), "parentProcessId": rng.below(20000),
                "parentProcessFileName": "explorer.exe", "remediationStatus": "None",
                "verdict": "Suspicious", "deviceId": device_id
            }));
            if rng.one_in(3) {
                out.push(json!({
                "entityType": "File", "sha1": hex(rng, 40),
                "fileName": "mimikatz.exe", "filePath": format!("C:\\Users\\user{user}\\Downloads"),
                "fileSize": rng.below(2_000_000), "remediationStatus": "Remediated", "verdict": "Malicious",
                "deviceId": device_id
            }));
            }
        }
        "OfficeATP" => {
            out.push(json!({
                "entityType": "MailMessage", "deliveryAction": "Delivered", "mailboxAddress": format!("user{user}@contoso.com"),
                "sender": "no-reply@contoso-billing.example", "recipient": format!("user{user}@contoso.com"),
                "subject": "Your invoice – \u{00e9}ch\u{00e9}ance d\u{00e9}pass\u{00e9}e", "networkMessageId": guid(rng),
                "urls": [format!("https://contoso-billing.example/inv?id={}&u=user{user}", hex(rng, 12))]
            }));
            out.push(json!({"entityType": "Url", "url": format!("https://contoso-billing.example/inv?id={}", hex(rng, 12))}));
        }
        _ => {
            out.push(json!({"entityType": "Ip", "ipAddress": format!("203.0.113.{}", 1 + rng.below(254)), "countryLetterCode": "FR"}));
            out.push(json!({"entityType": "CloudApplication", "applicationId": 11161, "applicationName": "Office 365"}));
        }
    }
    out
}

fn legacy_alert(rng: &mut Rng, incident_id: u64, n: u64, created: &str, updated: &str) -> Value {
    let (service, detection, title, _) = *rng.pick(SOURCES);
    let status = *rng.pick(&["New", "InProgress", "Resolved"]);
    let techniques: Vec<&str> = TECHNIQUES
        .iter()
        .copied()
        .filter(|_| rng.one_in(4))
        .collect();
    let device_id = hex(rng, 40);
    let devices = if service == "MicrosoftDefenderATP" {
        json!([{
            "mdatpDeviceId": device_id,
            "deviceDnsName": format!("host{}.corp.contoso.com", rng.below(500)),
            "osPlatform": "Windows11", "version": "23H2", "osProcessor": "x64", "osBuild": 22631,
            "healthStatus": "Active", "riskScore": "High", "rbacGroupName": "WDATP-Ring0",
            "rbacGroupId": 9, "firstSeen": time(rng, 0), "defenderAvStatus": "Updated",
            "onboardingStatus": "Onboarded", "tags": ["Tier0"]
        }])
    } else {
        json!([])
    };
    json!({
        "alertId": format!("da{:018}_{:09}", incident_id * 1000 + n, rng.below(1_000_000_000)),
        "providerAlertId": format!("da{:018}", incident_id * 1000 + n),
        "incidentId": incident_id,
        "serviceSource": service,
        "creationTime": created,
        "lastUpdatedTime": updated,
        "resolvedTime": if status == "Resolved" { json!(updated) } else { Value::Null },
        "firstActivity": time(rng, 2),
        "lastActivity": time(rng, 2),
        "title": title,
        "description": format!("{title} on a device or account of the tenant: \"{title}\" at C:\\Users\\Public."),
        "category": *rng.pick(CATEGORIES),
        "status": status,
        "severity": *rng.pick(&["Informational", "Low", "Medium", "High"]),
        "investigationId": if rng.one_in(3) { json!(rng.below(100_000)) } else { Value::Null },
        "investigationState": "UnsupportedAlertType",
        "classification": null,
        "determination": null,
        "detectionSource": detection,
        "detectorId": guid(rng),
        "assignedTo": null,
        "actorName": null,
        "threatFamilyName": if rng.one_in(2) { json!("Mimikatz") } else { Value::Null },
        "mitreTechniques": techniques,
        "devices": devices,
        "entities": entities(rng, service, &device_id),
    })
}

/// One legacy incident (the Defender API's shape) with id `id`.
fn legacy_incident(rng: &mut Rng, id: u64) -> Value {
    let status = match rng.below(100) {
        0..=39 => "Active",
        40..=59 => "InProgress",
        60..=92 => "Resolved",
        _ => "Redirected",
    };
    let severity = if rng.one_in(20) {
        "UnSpecified"
    } else {
        *rng.pick(&["Informational", "Low", "Medium", "High"])
    };
    let (classification, determination) = if status == "Resolved" {
        *rng.pick(&[
            ("TruePositive", "Malware"),
            ("FalsePositive", "Other"),
            ("InformationalExpectedActivity", "SecurityTesting"),
        ])
    } else {
        ("Unknown", "NotAvailable")
    };
    let alerts = if status == "Redirected" {
        0
    } else if rng.one_in(8) {
        12
    } else {
        1 + rng.below(8)
    };
    let created = time(rng, 0);
    let updated = time(rng, 1);
    let alerts: Vec<Value> = (0..alerts)
        .map(|n| legacy_alert(rng, id, n, &created, &updated))
        .collect();
    let comments: Vec<Value> = (0..rng.below(3))
        .map(|n| json!({"comment": format!("Checked with the owner of the device, step {n}: \"expected\" — closing."), "createdBy": *rng.pick(ANALYSTS), "createdTime": time(rng, 1)}))
        .collect();
    json!({
        "incidentId": id,
        "incidentUri": format!("https://security.microsoft.com/incidents/{id}?tid={TENANT}"),
        "redirectIncidentId": if status == "Redirected" { json!(id + 7_000_000) } else { Value::Null },
        "incidentName": *rng.pick(NAMES),
        "createdTime": created,
        "lastUpdateTime": updated,
        "assignedTo": if rng.one_in(2) { json!(*rng.pick(ANALYSTS)) } else { Value::Null },
        "classification": classification,
        "determination": determination,
        "status": status,
        "severity": severity,
        "tags": if rng.one_in(4) { json!(["Demo", "Tier0"]) } else { json!([]) },
        "comments": comments,
        "alerts": alerts,
    })
}

/// `InProgress` → `inProgress`; `UnSpecified` → `unknown`.
fn camel(value: &Value) -> Value {
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

fn evidence(alert: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for entity in alert["entities"].as_array().into_iter().flatten() {
        let common = |kind: &str| {
            json!({
                "@odata.type": format!("#microsoft.graph.security.{kind}"),
                "createdDateTime": alert["creationTime"], "verdict": "suspicious",
                "remediationStatus": "none", "remediationStatusDetails": null,
                "roles": [], "detailedRoles": [], "tags": []
            })
        };
        let mut item = match entity["entityType"].as_str() {
            Some("User") => {
                let mut e = common("userEvidence");
                e["userAccount"] = json!({
                    "accountName": entity["accountName"], "domainName": entity["domainName"],
                    "userSid": entity["userSid"], "azureAdUserId": entity["aadUserId"],
                    "userPrincipalName": entity["userPrincipalName"], "displayName": entity["accountName"]
                });
                e
            }
            Some("Process") => {
                let mut e = common("processEvidence");
                e["processId"] = entity["processId"].clone();
                e["parentProcessId"] = entity["parentProcessId"].clone();
                e["processCommandLine"] = entity["processCommandLine"].clone();
                e["processCreationDateTime"] = entity["processCreationTime"].clone();
                e["parentProcessCreationDateTime"] = entity["parentProcessCreationTime"].clone();
                e["detectionStatus"] = json!("detected");
                e["mdeDeviceId"] = entity["deviceId"].clone();
                e["imageFile"] = json!({"sha1": entity["sha1"], "sha256": entity["sha256"], "fileName": entity["fileName"], "filePath": entity["filePath"], "fileSize": 491520, "filePublisher": "Microsoft Corporation", "signer": null, "issuer": null});
                e["parentProcessImageFile"] = json!({"sha1": null, "sha256": null, "fileName": entity["parentProcessFileName"], "filePath": entity["parentProcessFilePath"], "fileSize": null, "filePublisher": null, "signer": null, "issuer": null});
                e
            }
            _ => {
                let mut e = common("analyzedMessageEvidence");
                if let (Some(target), Some(source)) = (e.as_object_mut(), entity.as_object()) {
                    for (k, v) in source {
                        if k != "entityType" {
                            target.insert(k.clone(), v.clone());
                        }
                    }
                }
                e
            }
        };
        if let Some(object) = item.as_object_mut() {
            object.insert("rbacGroupName".into(), Value::Null);
        }
        out.push(item);
    }
    for device in alert["devices"].as_array().into_iter().flatten() {
        let mut e = json!({
            "@odata.type": "#microsoft.graph.security.deviceEvidence",
            "createdDateTime": alert["creationTime"], "verdict": "unknown", "remediationStatus": "none",
            "remediationStatusDetails": null, "firstSeenDateTime": device["firstSeen"],
            "mdeDeviceId": device["mdatpDeviceId"], "azureAdDeviceId": device["aadDeviceId"],
            "deviceDnsName": device["deviceDnsName"], "osPlatform": device["osPlatform"],
            "osBuild": device["osBuild"], "version": device["version"], "healthStatus": "active",
            "riskScore": "high", "rbacGroupId": device["rbacGroupId"], "rbacGroupName": device["rbacGroupName"],
            "onboardingStatus": "onboarded", "defenderAvStatus": "updated", "roles": [], "tags": device["tags"],
            "loggedOnUsers": device["loggedOnUsers"], "vmMetadata": null, "detailedRoles": []
        });
        if let Some(object) = e.as_object_mut() {
            object.insert("ipInterfaces".into(), json!(["192.168.1.10", "fe80::1"]));
        }
        out.push(e);
    }
    out
}

/// The Graph `security/incident` form of a legacy incident, alerts expanded.
fn to_graph(incident: &Value) -> Value {
    let id = incident["incidentId"].to_string();
    let url = incident["incidentUri"].clone();
    let alerts: Vec<Value> = incident["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|alert| {
            json!({
                "@odata.type": "#microsoft.graph.security.alert",
                "id": alert["alertId"], "providerAlertId": alert["providerAlertId"], "incidentId": id,
                "status": camel(&alert["status"]), "severity": camel(&alert["severity"]),
                "classification": camel(&alert["classification"]), "determination": camel(&alert["determination"]),
                "serviceSource": translate(&alert["serviceSource"], GRAPH_SERVICE_SOURCES),
                "detectionSource": translate(&alert["detectionSource"], GRAPH_DETECTION_SOURCES),
                "productName": "Microsoft Defender XDR", "detectorId": alert["detectorId"], "tenantId": TENANT,
                "title": alert["title"], "description": alert["description"],
                "recommendedActions": "A. Validate the alert.\r\n1. Check the process tree.\r\n2. Contain the device.\r\nB. Scope the incident: look for the same indicators elsewhere.",
                "category": alert["category"], "assignedTo": alert["assignedTo"],
                "alertWebUrl": format!("https://security.microsoft.com/alerts/{}?tid={TENANT}", alert["alertId"].as_str().unwrap_or_default()),
                "incidentWebUrl": url, "actorDisplayName": alert["actorName"],
                "threatDisplayName": alert["threatFamilyName"], "threatFamilyName": alert["threatFamilyName"],
                "mitreTechniques": alert["mitreTechniques"],
                "createdDateTime": alert["creationTime"], "lastUpdateDateTime": alert["lastUpdatedTime"],
                "resolvedDateTime": alert["resolvedTime"], "firstActivityDateTime": alert["firstActivity"],
                "lastActivityDateTime": alert["lastActivity"], "comments": [], "systemTags": [],
                "evidence": evidence(alert),
            })
        })
        .collect();
    json!({
        "@odata.type": "#microsoft.graph.security.incident",
        "id": id, "tenantId": TENANT, "status": camel(&incident["status"]),
        "incidentWebUrl": url,
        "redirectIncidentId": match &incident["redirectIncidentId"] { Value::Null => Value::Null, v => json!(v.to_string()) },
        "displayName": incident["incidentName"],
        "createdDateTime": incident["createdTime"], "lastUpdateDateTime": incident["lastUpdateTime"],
        "assignedTo": incident["assignedTo"],
        "classification": camel(&incident["classification"]), "determination": camel(&incident["determination"]),
        "severity": camel(&incident["severity"]), "customTags": incident["tags"], "systemTags": ["Defender Experts"],
        "description": "", "lastModifiedBy": "API-App:app@contoso.com", "resolvingComment": null, "summary": null,
        "comments": incident["comments"].as_array().into_iter().flatten().map(|c| json!({"comment": c["comment"], "createdByDisplayName": c["createdBy"], "createdDateTime": c["createdTime"]})).collect::<Vec<_>>(),
        "alerts": alerts,
    })
}

/// `count` realistic incidents of `api`, ids counting down from `first_id`, from `seed`.
pub fn incidents(api: Api, count: usize, first_id: u64, seed: u64) -> Vec<Value> {
    let mut rng = Rng::new(seed);
    (0..count as u64)
        .map(|n| {
            let legacy = legacy_incident(&mut rng, first_id.saturating_sub(n));
            match api {
                Api::Defender => legacy,
                Api::Graph => to_graph(&legacy),
            }
        })
        .collect()
}

/// The text of an incidents page of `api` holding `incidents`, with `next_link` if given.
pub fn page_text(api: Api, incidents: &[Value], next_link: Option<&str>) -> String {
    let context = match api {
        Api::Defender => "https://api.security.microsoft.com/api/$metadata#Incidents",
        Api::Graph => "https://graph.microsoft.com/v1.0/$metadata#security/incidents(alerts())",
    };
    let mut page = json!({ "@odata.context": context, "value": incidents });
    if let (Some(link), Some(object)) = (next_link, page.as_object_mut()) {
        object.insert("@odata.nextLink".into(), json!(link));
    }
    page.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workload_gives_one_row_per_alert() {
        let (rows, bytes) = normalize(&page(5), 3);
        assert_eq!(rows, 15);
        assert!(bytes > 15 * 500);
        assert_eq!(normalize_reference(&page(5), 3), (rows, bytes));
    }

    #[test]
    fn realistic_incidents_are_several_kilobytes_with_several_alerts() {
        for api in [Api::Defender, Api::Graph] {
            let incidents = incidents(api, 200, 500_000, 7);
            let text = page_text(api, &incidents, None);
            let alerts: usize = incidents
                .iter()
                .map(|i| i["alerts"].as_array().map_or(0, Vec::len))
                .sum();
            let per_incident = text.len() / incidents.len();
            assert!((4_000..24_000).contains(&per_incident), "{per_incident}");
            assert!((600..1400).contains(&alerts), "{alerts}");
        }
    }
}
