//! Page bytes → serialized detection rows, natively: the detections skill's loop (paging,
//! de-duplication, rows) over realistic pages served from memory, through a body that hands out
//! 16 KiB chunks like the guest's `BodyReader`.
//!
//! `cargo run -p defender --release --example rows_bench [incidents] [repeats]`

use std::io::Read;
use std::time::{Duration, Instant};

use defender::paging::{Dedup, Pager, incident_id, last_update};
use defender::{Api, Body, Fetch, ListRequest, detection_rows};
use serde_json::Value;
use skillhost_guest::{HttpError, SkillError};

/// A body handed out in chunks of at most 16 KiB, each a fresh allocation (as the host's
/// `incoming-body.read` returns them).
struct Chunked {
    text: std::sync::Arc<Vec<u8>>,
    at: usize,
    chunk: Vec<u8>,
    position: usize,
}

impl Read for Chunked {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.position == self.chunk.len() {
            let end = (self.at + 16 * 1024).min(self.text.len());
            if end == self.at {
                return Ok(0);
            }
            self.chunk = self.text[self.at..end].to_vec();
            self.at = end;
            self.position = 0;
        }
        let n = out.len().min(self.chunk.len() - self.position);
        out[..n].copy_from_slice(&self.chunk[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

impl Body for Chunked {
    fn take_error(&mut self) -> Option<HttpError> {
        None
    }
}

/// Serves the pages in order.
struct Served {
    pages: Vec<std::sync::Arc<Vec<u8>>>,
    next: usize,
}

impl Fetch for Served {
    fn get(&mut self, _: &str, _: &str) -> Result<(u16, Box<dyn Body>), HttpError> {
        let text = self.pages[self.next.min(self.pages.len() - 1)].clone();
        self.next += 1;
        Ok((
            200,
            Box::new(Chunked {
                text,
                at: 0,
                chunk: Vec::new(),
                position: 0,
            }),
        ))
    }
}

/// The detections skill's loop, emitting into `sink`; returns (incidents, rows).
fn detections(
    request: &ListRequest,
    fetch: &mut dyn Fetch,
    sink: &mut dyn FnMut(&str),
) -> Result<(usize, u64), SkillError> {
    let api = request.api;
    let mut pager = Pager::new(request);
    let mut dedup: Dedup<Vec<String>> = Dedup::default();
    let hold = (request.page_size / 2).max(1);
    let remembered = request.page_size * 2;
    let mut rows = 0u64;
    let mut emit = |incidents: Vec<Vec<String>>, rows: &mut u64| {
        for row in incidents.into_iter().flatten() {
            sink(&row);
            *rows += 1;
        }
    };
    loop {
        let mut on_incident = |incident: Value| {
            let serialized = detection_rows(&incident, api)
                .into_iter()
                .map(|row| Value::Object(row).to_string())
                .collect();
            dedup.accept(incident_id(&incident), last_update(&incident), serialized);
            let ready = dedup.pending().saturating_sub(hold);
            emit(dedup.release(ready, remembered), &mut rows);
            Ok(())
        };
        if pager.next_page_each(fetch, &mut on_incident)?.is_none() {
            break;
        }
    }
    let incidents = dedup.accepted;
    emit(dedup.release(usize::MAX, 0), &mut rows);
    Ok((incidents, rows))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2600);
    let repeats: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(7);
    for api in [Api::Defender, Api::Graph] {
        let page_size = api.max_page_size() as usize;
        let incidents = defender::workload::incidents(api, total, 9_000_000, 42);
        let chunks: Vec<&[Value]> = incidents.chunks(page_size).collect();
        let mut pages: Vec<std::sync::Arc<Vec<u8>>> = chunks
            .iter()
            .enumerate()
            .map(|(n, chunk)| {
                // Graph pages only by `@odata.nextLink`; the Defender API by `$skip`.
                let link = format!("https://graph.microsoft.com/v1.0/security/incidents?$expand=alerts&$top=50&$skiptoken={}", n + 1);
                let link = (api == Api::Graph && (n + 1 < chunks.len() || total.is_multiple_of(page_size))).then_some(link.as_str());
                std::sync::Arc::new(defender::workload::page_text(api, chunk, link).into_bytes())
            })
            .collect();
        if total.is_multiple_of(page_size) {
            pages.push(std::sync::Arc::new(
                defender::workload::page_text(api, &[], None).into_bytes(),
            ));
        }
        let bytes: usize = pages.iter().map(|p| p.len()).sum();
        let request = ListRequest {
            api,
            filter: "lastUpdateTime ge 2026-11-26T08:00:00Z".into(),
            page_size,
            limit: None,
        };
        let mut times = Vec::new();
        let mut result = (0, 0);
        let mut out_bytes = 0usize;
        for _ in 0..repeats {
            let mut fetch = Served {
                pages: pages.clone(),
                next: 0,
            };
            out_bytes = 0;
            let started = Instant::now();
            result = detections(&request, &mut fetch, &mut |row| out_bytes += row.len())
                .expect("detections");
            times.push(started.elapsed());
        }
        times.sort();
        let median = times[times.len() / 2];
        let best = times[0];
        let (incident_count, rows) = result;
        let mbps = |d: Duration| bytes as f64 / d.as_secs_f64() / 1e6;
        println!(
            "{:<8} {} pages, {:.1} MB in, {} incidents, {} rows, {:.1} MB of rows out; median {:.1} ms ({:.0} MB/s, {:.0} rows/s, {:.2} us/row), best {:.1} ms ({:.0} MB/s)",
            api.service(),
            pages.len(),
            bytes as f64 / 1e6,
            incident_count,
            rows,
            out_bytes as f64 / 1e6,
            median.as_secs_f64() * 1e3,
            mbps(median),
            rows as f64 / median.as_secs_f64(),
            median.as_secs_f64() * 1e6 / rows as f64,
            best.as_secs_f64() * 1e3,
            mbps(best),
        );
    }
}
