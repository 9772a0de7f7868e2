//! Printing results: `json`, `ndjson`, `csv` and `table`, streaming rows where the format allows.
//!
//! Results go to stdout and nothing else does; summaries of streamed formats go to stderr so that
//! stdout stays machine-readable.

use std::io::{IsTerminal, Write};

use serde_json::{Map, Value};

use skillhost_runtime::capabilities::RowSink;

/// An output format of `skillhost run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Pretty JSON: the result object, or `{"rows": [...], "summary": {...}}` for a dataset.
    Json,
    /// One JSON object per line: rows (or the items of an object's list); summary on stderr.
    Ndjson,
    /// RFC 4180 CSV with a header row in column order; lists and objects as JSON text.
    Csv,
    /// Aligned columns for a terminal.
    Table,
}

/// Writes rows as they arrive, and the closing summary, in one format.
pub struct RowPrinter {
    format: OutputFormat,
    columns: Vec<String>,
    out: Box<dyn Write + Send>,
    flush_each: bool,
    rows_written: u64,
    table: Vec<Vec<String>>,
}

impl RowPrinter {
    /// A printer to stdout. `columns` gives the order of dataset columns (may be empty).
    pub fn stdout(format: OutputFormat, columns: Vec<String>) -> Self {
        let terminal = std::io::stdout().is_terminal();
        Self::new(
            format,
            columns,
            Box::new(std::io::BufWriter::new(std::io::stdout())),
            terminal,
        )
    }

    /// A printer to any writer.
    pub fn new(
        format: OutputFormat,
        columns: Vec<String>,
        out: Box<dyn Write + Send>,
        flush_each: bool,
    ) -> Self {
        RowPrinter {
            format,
            columns,
            out,
            flush_each,
            rows_written: 0,
            table: Vec::new(),
        }
    }

    fn write_row(&mut self, row: &Map<String, Value>) -> std::io::Result<()> {
        if self.columns.is_empty() {
            self.columns = row.keys().cloned().collect();
        }
        let first = self.rows_written == 0;
        self.rows_written += 1;
        match self.format {
            OutputFormat::Json => {
                let text = serde_json::to_string(row)?;
                if first {
                    write!(self.out, "{{\n  \"rows\": [\n    {text}")?;
                } else {
                    write!(self.out, ",\n    {text}")?;
                }
            }
            OutputFormat::Ndjson => {
                serde_json::to_writer(&mut self.out, row)?;
                self.out.write_all(b"\n")?;
            }
            OutputFormat::Csv => {
                if first {
                    let header: Vec<String> = self.columns.iter().map(|c| csv_field(c)).collect();
                    writeln!(self.out, "{}", header.join(","))?;
                }
                let cells: Vec<String> = self
                    .columns
                    .iter()
                    .map(|c| csv_field(&cell_text(row.get(c))))
                    .collect();
                writeln!(self.out, "{}", cells.join(","))?;
            }
            OutputFormat::Table => {
                let cells = self.columns.iter().map(|c| cell_text(row.get(c))).collect();
                self.table.push(cells);
                return Ok(());
            }
        }
        if self.flush_each {
            self.out.flush()?;
        }
        Ok(())
    }

    /// Ends a dataset: closes the JSON document or prints the table; the summary goes into the
    /// JSON document, or to stderr for the other formats.
    pub fn finish_dataset(mut self, summary: &Value) -> std::io::Result<()> {
        match self.format {
            OutputFormat::Json => {
                let summary = indent(&serde_json::to_string_pretty(summary)?, 2);
                if self.rows_written == 0 {
                    write!(
                        self.out,
                        "{{\n  \"rows\": [],\n  \"summary\": {summary}\n}}\n"
                    )?;
                } else {
                    write!(self.out, "\n  ],\n  \"summary\": {summary}\n}}\n")?;
                }
            }
            OutputFormat::Csv if self.rows_written == 0 => {
                let header: Vec<String> = self.columns.iter().map(|c| csv_field(c)).collect();
                writeln!(self.out, "{}", header.join(","))?;
                eprintln!("{}", serde_json::to_string(summary)?);
            }
            OutputFormat::Table => {
                let table = std::mem::take(&mut self.table);
                write_table(&mut self.out, &self.columns, &table)?;
                eprintln!("{}", serde_json::to_string(summary)?);
            }
            _ => eprintln!("{}", serde_json::to_string(summary)?),
        }
        self.out.flush()
    }

    /// Prints an object result. `ndjson`, `csv` and `table` print the items of the object's
    /// first list of objects (such as `incidents`) as rows, and the rest of the object on stderr.
    pub fn finish_object(mut self, object: Value) -> std::io::Result<()> {
        if self.format == OutputFormat::Json {
            serde_json::to_writer_pretty(&mut self.out, &object)?;
            self.out.write_all(b"\n")?;
            return self.out.flush();
        }
        let Value::Object(mut map) = object else {
            serde_json::to_writer(&mut self.out, &object)?;
            self.out.write_all(b"\n")?;
            return self.out.flush();
        };
        // The rows: the first list of objects (such as `incidents`), else the first object (such
        // as one `incident`), else the whole object; what is left is the summary.
        let is_list = |v: &Value| v.as_array().is_some_and(|a| a.iter().all(Value::is_object));
        let key = map
            .iter()
            .find(|(_, v)| is_list(v))
            .or_else(|| map.iter().find(|(_, v)| v.is_object()))
            .map(|(k, _)| k.clone());
        let rows = match key.and_then(|k| map.remove(&k)) {
            Some(Value::Array(items)) => items,
            Some(single) => vec![single],
            None => vec![Value::Object(std::mem::take(&mut map))],
        };
        for row in rows {
            if let Value::Object(row) = row {
                self.write_row(&row)?;
            }
        }
        self.finish_dataset(&Value::Object(map))
    }
}

impl RowSink for RowPrinter {
    fn row(&mut self, row: Map<String, Value>) -> std::io::Result<()> {
        self.write_row(&row)
    }
}

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                l.to_string()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The text of one cell: strings as they are, null empty, lists and objects as JSON.
pub fn cell_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Quotes a CSV field when it needs it (RFC 4180).
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

const TABLE_CELL_MAX: usize = 40;

fn write_table(
    out: &mut dyn Write,
    columns: &[String],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    let clip = |s: &str| -> String {
        let one_line = s.replace(['\n', '\r', '\t'], " ");
        if one_line.chars().count() > TABLE_CELL_MAX {
            let cut: String = one_line.chars().take(TABLE_CELL_MAX - 1).collect();
            format!("{cut}…")
        } else {
            one_line
        }
    };
    let header: Vec<String> = columns.iter().map(|c| clip(c)).collect();
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| clip(c)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &body {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}", w = *w))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    writeln!(out, "{}", line(&header))?;
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    writeln!(out, "{}", line(&rule))?;
    for row in &body {
        writeln!(out, "{}", line(row))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn print(format: OutputFormat, rows: &[Value]) -> String {
        let shared = Shared::default();
        let mut printer = RowPrinter::new(
            format,
            vec!["id".into(), "tags".into(), "note".into()],
            Box::new(shared.clone()),
            false,
        );
        for row in rows {
            printer.row(row.as_object().unwrap().clone()).unwrap();
        }
        printer
            .finish_dataset(&json!({"rows": rows.len()}))
            .unwrap();
        String::from_utf8(shared.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn csv_quotes_fields_and_writes_lists_as_json() {
        let out = print(
            OutputFormat::Csv,
            &[
                json!({"id": "1", "tags": ["a", "b"], "note": "say \"hi\", ok"}),
                json!({"id": "2", "tags": [], "note": null}),
            ],
        );
        assert_eq!(
            out,
            "id,tags,note\n1,\"[\"\"a\"\",\"\"b\"\"]\",\"say \"\"hi\"\", ok\"\n2,[],\n"
        );
    }

    #[test]
    fn json_dataset_is_one_parseable_document() {
        let out = print(
            OutputFormat::Json,
            &[json!({"id": "1", "tags": [], "note": null})],
        );
        let doc: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            doc,
            json!({"rows": [{"id": "1", "tags": [], "note": null}], "summary": {"rows": 1}})
        );
        let empty: Value = serde_json::from_str(&print(OutputFormat::Json, &[])).unwrap();
        assert_eq!(empty, json!({"rows": [], "summary": {"rows": 0}}));
    }

    #[test]
    fn an_object_result_prints_its_list_as_rows_and_the_rest_as_summary() {
        let shared = Shared::default();
        let printer = RowPrinter::new(
            OutputFormat::Ndjson,
            vec![],
            Box::new(shared.clone()),
            false,
        );
        printer
            .finish_object(
                json!({"api": "defender", "count": 2, "incidents": [{"id": 1}, {"id": 2}]}),
            )
            .unwrap();
        let out = String::from_utf8(shared.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out, "{\"id\":1}\n{\"id\":2}\n");

        let shared = Shared::default();
        let printer = RowPrinter::new(OutputFormat::Csv, vec![], Box::new(shared.clone()), false);
        printer
            .finish_object(json!({"api": "graph", "incident": {"id": "7", "status": "active"}}))
            .unwrap();
        let out = String::from_utf8(shared.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out, "id,status\n7,active\n");
    }

    #[test]
    fn table_aligns_columns() {
        let out = print(
            OutputFormat::Table,
            &[
                json!({"id": "1", "tags": ["x"], "note": "long note"}),
                json!({"id": "22", "tags": [], "note": ""}),
            ],
        );
        assert_eq!(
            out,
            "id  tags   note\n--  -----  ---------\n1   [\"x\"]  long note\n22  []\n"
        );
    }
}
