//! Page bytes → serialized detection rows, natively: the detections skill's run (paging,
//! de-duplication, rows) over realistic pages served from memory, through a body that hands out
//! 16 KiB chunks like the guest's `BodyReader`. The reference path (`defender::reference`, what
//! the skill ran before) and the fast path (`defender::detections`) run alternately in the same
//! process on the same pages, and their rows are checked equal. Times are the thread's CPU time
//! (Linux), which the load of other processes disturbs less than the wall time also shown.
//!
//! `cargo run -p defender --release --example rows_bench [incidents] [repeats] [reference|fast]`

use std::io::Read;
use std::time::{Duration, Instant};

use defender::{Api, Body, Fetch, ListRequest};
use serde_json::Value;
use skillhost_guest::{HttpError, SkillError};

/// CPU time of this thread so far (Linux: `/proc/thread-self/schedstat`), when it can be read.
fn cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// Times `f`: (wall, CPU) — CPU is the wall time where CPU time cannot be read.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration, Duration) {
    let (cpu, started) = (cpu_time(), Instant::now());
    let out = f();
    let wall = started.elapsed();
    let cpu = match (cpu, cpu_time()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => wall,
    };
    (out, wall, cpu)
}

/// A run of the detections skill: the request, the fetch, where rows go; the summary.
type Run = fn(
    &ListRequest,
    &mut dyn Fetch,
    &mut dyn FnMut(&str) -> Result<(), SkillError>,
) -> Result<String, SkillError>;

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
        use std::io::BufRead;
        let chunk = self.fill_buf()?;
        let n = out.len().min(chunk.len());
        out[..n].copy_from_slice(&chunk[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl std::io::BufRead for Chunked {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.position == self.chunk.len() {
            let end = (self.at + 16 * 1024).min(self.text.len());
            self.chunk = self.text[self.at..end].to_vec();
            self.at = end;
            self.position = 0;
        }
        Ok(&self.chunk[self.position..])
    }

    fn consume(&mut self, n: usize) {
        self.position = (self.position + n).min(self.chunk.len());
    }
}

impl Body for Chunked {
    fn take_error(&mut self) -> Option<HttpError> {
        None
    }

    /// Lent as the SDK's reader lends the host's chunks, so that the bench times the same path.
    fn buffered(&mut self) -> Option<&mut dyn std::io::BufRead> {
        Some(self)
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

/// The list skill on both paths over `pages`: every incident, de-duplicated, in one result.
fn list(request: &ListRequest, pages: &[std::sync::Arc<Vec<u8>>], bytes: usize, repeats: usize) {
    let reference = |fetch: &mut Served| {
        defender::reference::list_all(request, fetch).map(|(incidents, pages)| {
            defender::reference::list_result(request.api, &request.filter, pages, incidents)
        })
    };
    let fast = |fetch: &mut Served| {
        defender::paging::list_all(request, fetch).map(|(incidents, pages)| {
            defender::paging::list_result(request.api, &request.filter, pages, &incidents)
        })
    };
    let mut best = [Duration::MAX; 2];
    let mut outputs = [String::new(), String::new()];
    for _ in 0..repeats {
        for n in 0..2 {
            let mut fetch = Served {
                pages: pages.to_vec(),
                next: 0,
            };
            let (output, _, cpu) = timed(|| {
                if n == 0 {
                    reference(&mut fetch)
                } else {
                    fast(&mut fetch)
                }
            });
            outputs[n] = output.expect("list");
            best[n] = best[n].min(cpu);
        }
    }
    assert!(outputs[0] == outputs[1], "both paths gave the same result");
    for (n, name) in ["reference", "fast"].iter().enumerate() {
        println!(
            "  list skill {name:<9} CPU best {:>7.1} ms: {:>5.0} MB/s ({:.1} MB result)",
            best[n].as_secs_f64() * 1e3,
            bytes as f64 / best[n].as_secs_f64() / 1e6,
            outputs[n].len() as f64 / 1e6,
        );
    }
}

/// A normalization workload: (incident text, incidents) → (rows, bytes of rows).
type Normalize = fn(&str, usize) -> (u64, u64);

/// The normalization workload of BENCHMARKS.md (one small incident parsed, expanded and
/// serialized `incidents` times), on both paths.
fn normalization(incidents: usize, repeats: usize) {
    let page = defender::workload::page(5);
    let runs: [(&str, Normalize); 2] = [
        ("reference", defender::workload::normalize_reference),
        ("fast", defender::workload::normalize),
    ];
    let mut best = [Duration::MAX; 2];
    let mut results = [(0, 0); 2];
    for _ in 0..repeats {
        for (n, (_, run)) in runs.iter().enumerate() {
            let (result, _, cpu) = timed(|| std::hint::black_box(run(&page, incidents)));
            results[n] = result;
            best[n] = best[n].min(cpu);
        }
    }
    assert_eq!(results[0], results[1], "both paths gave the same rows");
    let bytes = page.len() * incidents;
    for (n, (name, _)) in runs.iter().enumerate() {
        println!(
            "  normalization {name:<9} CPU best {:>7.1} ms: {:>5.0} MB/s, {:>8.0} rows/s ({} incidents × 5 alerts)",
            best[n].as_secs_f64() * 1e3,
            bytes as f64 / best[n].as_secs_f64() / 1e6,
            results[n].0 as f64 / best[n].as_secs_f64(),
            incidents,
        );
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2600);
    let repeats: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(7);
    // `reference` or `fast` times only that path (for a profiler).
    let only = args.next();
    if only.is_none() {
        normalization(10_000, repeats.min(5));
    }
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
        let paths: [(&str, Run); 2] = [
            ("reference", defender::reference::detections),
            ("fast", defender::detections),
        ];
        // Untimed: both paths give the same rows, in the same order, and the same summary.
        let mut outputs = Vec::new();
        for (name, run) in &paths {
            if only.as_deref().is_some_and(|only| only != *name) {
                continue;
            }
            let mut fetch = Served {
                pages: pages.clone(),
                next: 0,
            };
            let mut rows = Vec::new();
            let summary = run(&request, &mut fetch, &mut |row| {
                rows.push(row.to_string());
                Ok(())
            })
            .expect("detections");
            outputs.push((rows, summary));
        }
        assert!(
            outputs.windows(2).all(|w| w[0] == w[1]),
            "both paths gave the same rows"
        );
        let (rows, summary) = outputs.swap_remove(0);
        let out_bytes: usize = rows.iter().map(String::len).sum();
        let rows = rows.len() as u64;
        drop(outputs);
        let mut times = [Vec::new(), Vec::new()];
        let mut cpu = [Vec::new(), Vec::new()];
        for _ in 0..repeats {
            for (n, (name, run)) in paths.iter().enumerate() {
                if only.as_deref().is_some_and(|only| only != *name) {
                    continue;
                }
                let mut fetch = Served {
                    pages: pages.clone(),
                    next: 0,
                };
                let mut seen = 0usize;
                let (result, wall, used) = timed(|| {
                    run(&request, &mut fetch, &mut |row| {
                        seen += row.len();
                        Ok(())
                    })
                });
                result.expect("detections");
                times[n].push(wall);
                cpu[n].push(used);
                assert_eq!(seen, out_bytes);
            }
        }
        println!(
            "{}: {} pages, {:.1} MB in, {rows} rows ({:.1} MB out); summary {summary}",
            api.service(),
            pages.len(),
            bytes as f64 / 1e6,
            out_bytes as f64 / 1e6,
        );
        if only.is_none() {
            list(&request, &pages, bytes, repeats.min(5));
        }
        for (n, (name, _)) in paths.iter().enumerate() {
            if times[n].is_empty() {
                continue;
            }
            let median = |samples: &[Duration]| {
                let mut sorted = samples.to_vec();
                sorted.sort();
                sorted[sorted.len() / 2]
            };
            let (wall, cpu, best) = (
                median(&times[n]),
                median(&cpu[n]),
                cpu[n].iter().min().copied().unwrap_or_default(),
            );
            let mbps = |d: Duration| bytes as f64 / d.as_secs_f64() / 1e6;
            println!(
                "  {name:<9} CPU median {:>7.1} ms: {:>5.0} MB/s, {:>8.0} rows/s, {:>6.2} µs/row | CPU best {:>7.1} ms: {:>5.0} MB/s | wall median {:>7.1} ms",
                cpu.as_secs_f64() * 1e3,
                mbps(cpu),
                rows as f64 / cpu.as_secs_f64(),
                cpu.as_secs_f64() * 1e6 / rows as f64,
                best.as_secs_f64() * 1e3,
                mbps(best),
                wall.as_secs_f64() * 1e3,
            );
        }
    }
}
