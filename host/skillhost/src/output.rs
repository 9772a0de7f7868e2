//! Printing results: `json`, `ndjson`, `csv` and `table`, streaming rows where the format allows.
//!
//! Results go to stdout and nothing else does; summaries of streamed formats go to stderr so that
//! stdout stays machine-readable.
//!
//! Threat: every cell comes from a skill or an upstream. `table` is read by people: its cells are
//! escaped ([`escape`]) and clipped, and it aligns a bounded window of rows, then streams, so a
//! run with many rows (or many columns) costs bounded memory. `csv` is opened by spreadsheets: a
//! cell a spreadsheet would run as a formula is neutralized unless raw output is asked for; on a
//! terminal its cells are escaped like a table's (a file keeps the data as it is, line breaks in
//! quoted cells). JSON escapes C0 controls itself; C1 controls, DEL and the bidirectional and
//! separator characters are valid JSON raw, so on a terminal, and always in the summary on
//! stderr, they are written as `\uXXXX` ([`escape_in_json`], the same JSON value). Every
//! format's bytes count against `--max-output` where they are written (see the `pipe` module).

use std::io::Write;

use serde_json::{Map, Value};
use skillhost_contract::text::{escape, escape_in_json};
use skillhost_runtime::capabilities::RowSink;
use skillhost_runtime::capabilities::emit::Row;
use skillhost_runtime::output::Output;

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

/// Rows a `table` aligns before it streams with the widths they gave.
pub const TABLE_WINDOW: usize = 100;

/// Writes rows as they arrive, and the closing summary, in one format.
pub struct RowPrinter {
    format: OutputFormat,
    columns: Vec<String>,
    out: Box<dyn Write + Send>,
    /// stdout is a terminal: each row is flushed, and no unsafe character is written raw.
    terminal: bool,
    raw_csv: bool,
    rows_written: u64,
    /// `table`: the first rows (escaped and clipped cells), until the widths are known.
    window: Vec<Vec<String>>,
    /// `table`: the column widths, once the window was printed.
    widths: Option<Vec<usize>>,
}

impl RowPrinter {
    /// A printer to any writer. `columns` gives the order of dataset columns (may be empty);
    /// `terminal` says the writer is a terminal: every row is flushed, and every character
    /// [`escape`] would escape is written escaped (as `\uXXXX` in JSON, the same value).
    pub fn new(
        format: OutputFormat,
        columns: Vec<String>,
        out: Box<dyn Write + Send>,
        terminal: bool,
    ) -> Self {
        RowPrinter {
            format,
            columns,
            out,
            terminal,
            raw_csv: false,
            rows_written: 0,
            window: Vec::new(),
            widths: None,
        }
    }

    /// Writes CSV cells as they are, formulas included.
    pub fn raw_csv(mut self, raw: bool) -> Self {
        self.raw_csv = raw;
        self
    }

    fn csv_cell(&self, text: &str) -> String {
        // A file gets the data as it is (zero-width joiners and direction marks are text in
        // many scripts); a terminal gets nothing that could drive it.
        let text = if self.terminal {
            escape(text)
        } else {
            std::borrow::Cow::Borrowed(text)
        };
        if self.raw_csv {
            csv_field(&text)
        } else {
            csv_field(&neutralize_formula(&text))
        }
    }

    /// JSON text as this printer writes it: on a terminal, unsafe characters escaped.
    fn json_out<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        if self.terminal {
            escape_in_json(text)
        } else {
            std::borrow::Cow::Borrowed(text)
        }
    }

    fn write_row(&mut self, row: &Map<String, Value>) -> std::io::Result<()> {
        if self.columns.is_empty() {
            // Columns taken from the data are capped like declared ones.
            self.columns = row
                .keys()
                .take(skillhost_contract::manifest::MAX_COLUMNS)
                .cloned()
                .collect();
        }
        let first = self.rows_written == 0;
        self.rows_written += 1;
        match self.format {
            OutputFormat::Json => {
                let text = serde_json::to_string(row)?;
                let text = self.json_out(&text);
                if first {
                    write!(self.out, "{{\n  \"rows\": [\n    {text}")?;
                } else {
                    write!(self.out, ",\n    {text}")?;
                }
            }
            OutputFormat::Ndjson if self.terminal => {
                let text = serde_json::to_string(row)?;
                let text = self.json_out(&text);
                self.out.write_all(text.as_bytes())?;
                self.out.write_all(b"\n")?;
            }
            OutputFormat::Ndjson => {
                serde_json::to_writer(&mut self.out, row)?;
                self.out.write_all(b"\n")?;
            }
            OutputFormat::Csv => {
                if first {
                    let header: Vec<String> =
                        self.columns.iter().map(|c| self.csv_cell(c)).collect();
                    writeln!(self.out, "{}", header.join(","))?;
                }
                let cells: Vec<String> = self
                    .columns
                    .iter()
                    .map(|c| self.csv_cell(&cell_text(row.get(c))))
                    .collect();
                writeln!(self.out, "{}", cells.join(","))?;
            }
            OutputFormat::Table => {
                let cells: Vec<String> = self
                    .columns
                    .iter()
                    .map(|c| clip(&cell_text(row.get(c)), TABLE_CELL_MAX))
                    .collect();
                match &self.widths {
                    Some(widths) => {
                        let line = table_line(&cells, widths);
                        writeln!(self.out, "{line}")?;
                    }
                    None => {
                        self.window.push(cells);
                        if self.window.len() >= TABLE_WINDOW {
                            self.print_window()?;
                        }
                        return Ok(());
                    }
                }
            }
        }
        if self.terminal {
            self.out.flush()?;
        }
        Ok(())
    }

    /// Ends a dataset: closes the JSON document or prints the table; the summary goes into the
    /// JSON document, or to stderr for the other formats.
    pub fn finish_dataset(mut self, summary: &Value) -> std::io::Result<()> {
        match self.format {
            OutputFormat::Json => {
                let summary = serde_json::to_string_pretty(summary)?;
                let summary = indent(&self.json_out(&summary), 2);
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
                let header: Vec<String> = self.columns.iter().map(|c| self.csv_cell(c)).collect();
                writeln!(self.out, "{}", header.join(","))?;
                say_summary(summary)?;
            }
            OutputFormat::Table => {
                if self.widths.is_none() {
                    self.print_window()?;
                }
                say_summary(summary)?;
            }
            _ => say_summary(summary)?,
        }
        self.out.flush()
    }

    /// `table`: prints the header, the rule and the window of rows with the widths they give,
    /// after which rows stream with those widths.
    fn print_window(&mut self) -> std::io::Result<()> {
        let header: Vec<String> = self
            .columns
            .iter()
            .map(|c| clip(c, TABLE_CELL_MAX))
            .collect();
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in &self.window {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        writeln!(self.out, "{}", table_line(&header, &widths))?;
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        writeln!(self.out, "{}", table_line(&rule, &widths))?;
        for row in std::mem::take(&mut self.window) {
            writeln!(self.out, "{}", table_line(&row, &widths))?;
        }
        self.widths = Some(widths);
        Ok(())
    }

    /// Hands every row printed so far to the output (a `table` prints its window first), so
    /// that what follows, the summary, can wait until the rows were delivered.
    pub fn flush_rows(&mut self) -> std::io::Result<()> {
        if self.format == OutputFormat::Table && self.widths.is_none() && !self.window.is_empty() {
            self.print_window()?;
        }
        self.out.flush()
    }

    /// Ends the output of a run that failed: the rows printed so far are kept (a `table`
    /// prints its window), nothing is added.
    pub fn abandon(mut self) -> std::io::Result<()> {
        self.flush_rows()
    }

    /// Writes one whole value with `write`, a newline, and flushes. serde_json writes a value
    /// token by token, so through a buffer of its own: the output's writer takes a row or a
    /// buffer at a time.
    fn write_whole(
        &mut self,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        if self.terminal {
            let mut out =
                std::io::BufWriter::with_capacity(WHOLE_BUFFER, EscapeInJson::new(&mut self.out));
            write(&mut out)?;
            out.write_all(b"\n")?;
            return out.flush();
        }
        let mut out = std::io::BufWriter::with_capacity(WHOLE_BUFFER, &mut self.out);
        write(&mut out)?;
        out.write_all(b"\n")?;
        // Flushes the buffer, then the output's writer under it.
        out.flush()
    }

    /// Prints an object result. `ndjson`, `csv` and `table` print the items of the object's
    /// first list of objects (such as `incidents`) as rows, and the rest of the object on stderr.
    pub fn finish_object(mut self, object: Output) -> std::io::Result<()> {
        if self.format == OutputFormat::Json {
            // Straight from the checked text: no tree, however large the result.
            return self.write_whole(|out| object.write_pretty(out));
        }
        // The text goes as the tree is built: not both held while the rows are printed.
        let object = object.into_value()?;
        let Value::Object(mut map) = object else {
            return self.write_whole(|out| serde_json::to_writer(out, &object).map_err(Into::into));
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

impl RowPrinter {
    /// Writes a row of the JSON formats as the guest's checked text (one line, one object):
    /// nothing is parsed or built for it.
    fn write_json_text(&mut self, text: &str) -> std::io::Result<()> {
        let text = self.json_out(text);
        let first = self.rows_written == 0;
        self.rows_written += 1;
        match (self.format, first) {
            (OutputFormat::Json, true) => write!(self.out, "{{\n  \"rows\": [\n    {text}")?,
            (OutputFormat::Json, false) => write!(self.out, ",\n    {text}")?,
            _ => {
                self.out.write_all(text.as_bytes())?;
                self.out.write_all(b"\n")?;
            }
        }
        if self.terminal {
            self.out.flush()?;
        }
        Ok(())
    }
}

/// A writer of JSON text that writes it on with [`escape_in_json`], as it comes: a character cut
/// between two writes waits for its last bytes.
struct EscapeInJson<W: Write> {
    out: W,
    /// The first bytes of a character the last write cut (at most 3).
    partial: Vec<u8>,
}

impl<W: Write> EscapeInJson<W> {
    fn new(out: W) -> Self {
        EscapeInJson {
            out,
            partial: Vec::new(),
        }
    }
}

impl<W: Write> Write for EscapeInJson<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let joined;
        let bytes = if self.partial.is_empty() {
            buf
        } else {
            joined = [std::mem::take(&mut self.partial).as_slice(), buf].concat();
            &joined
        };
        let (text, rest) = match std::str::from_utf8(bytes) {
            Ok(text) => (text, &[][..]),
            Err(e) => {
                let (valid, rest) = bytes.split_at(e.valid_up_to());
                // The check just passed: `valid` is UTF-8.
                let text = std::str::from_utf8(valid).unwrap_or_default();
                (text, rest)
            }
        };
        self.out.write_all(escape_in_json(text).as_bytes())?;
        if rest.len() < 4 && std::str::from_utf8(rest).is_err_and(|e| e.error_len().is_none()) {
            // A character cut short: its first bytes wait for the next write.
            self.partial = rest.to_vec();
        } else {
            // Not UTF-8 (serde_json never writes it): passed on as it is.
            self.out.write_all(rest)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.partial.is_empty() {
            let partial = std::mem::take(&mut self.partial);
            self.out.write_all(&partial)?;
        }
        self.out.flush()
    }
}

/// Writes a streamed format's summary, one JSON line, to stderr (often a terminal), its unsafe
/// characters escaped.
fn say_summary(summary: &Value) -> std::io::Result<()> {
    say!("{}", escape_in_json(&serde_json::to_string(summary)?));
    Ok(())
}

impl RowSink for RowPrinter {
    fn row(&mut self, row: Row) -> std::io::Result<()> {
        match self.format {
            OutputFormat::Json | OutputFormat::Ndjson => self.write_json_text(row.text()),
            OutputFormat::Csv | OutputFormat::Table => self.write_row(&row.to_map()?),
        }
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

/// Neutralizes a cell a spreadsheet would run as a formula (one starting with `=`, `+`, `-`,
/// `@`, a tab or a CR) by prefixing `'`; plain numbers such as `-5` or `+1.5` stay as they are.
pub fn neutralize_formula(text: &str) -> std::borrow::Cow<'_, str> {
    let risky = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && text.parse::<f64>().is_err() {
        std::borrow::Cow::Owned(format!("'{text}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

const TABLE_CELL_MAX: usize = 40;

/// The buffer a whole value is written through ([`RowPrinter::write_whole`]).
const WHOLE_BUFFER: usize = 64 * 1024;

/// A cell as a terminal shows it: escaped, and cut to `max` characters with `…`.
fn clip(text: &str, max: usize) -> String {
    let safe = escape(text);
    if safe.chars().count() > max {
        let cut: String = safe.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        safe.into_owned()
    }
}

/// One table line: each cell padded (or clipped) to its column's width.
fn table_line(cells: &[String], widths: &[usize]) -> String {
    cells
        .iter()
        .zip(widths)
        .map(|(c, w)| {
            let cell = if c.chars().count() > *w {
                clip(c, *w)
            } else {
                c.clone()
            };
            format!("{cell:<w$}", w = *w)
        })
        .collect::<Vec<_>>()
        .join("  ")
        .trim_end()
        .to_string()
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
        print_to(format, rows, false)
    }

    fn print_to(format: OutputFormat, rows: &[Value], terminal: bool) -> String {
        let shared = Shared::default();
        let mut printer = RowPrinter::new(
            format,
            vec!["id".into(), "tags".into(), "note".into()],
            Box::new(shared.clone()),
            terminal,
        );
        for row in rows {
            printer.row(Row::check(row.to_string()).unwrap()).unwrap();
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

    /// A cell an attacked machine could have written: an OSC title sequence, a CR that moves the
    /// cursor back over the line, a C1 CSI, a bidirectional override.
    fn hostile() -> Value {
        json!({"id": "1", "tags": [], "note": "a\u{1b}]0;owned\u{7}\rb\u{9b}2J\u{202e}c"})
    }

    #[test]
    fn csv_to_a_terminal_escapes_every_control_and_formatting_character() {
        let out = print_to(OutputFormat::Csv, &[hostile()], true);
        assert_eq!(
            out,
            "id,tags,note\n1,[],a\\e]0;owned\\u{7}\\rb\\u{9b}2J\\u{202e}c\n"
        );
    }

    #[test]
    fn csv_to_a_file_keeps_the_data_as_it_is_in_a_quoted_cell() {
        let out = print_to(OutputFormat::Csv, &[hostile()], false);
        assert_eq!(
            out,
            "id,tags,note\n1,[],\"a\u{1b}]0;owned\u{7}\rb\u{9b}2J\u{202e}c\"\n"
        );
    }

    #[test]
    fn escaping_json_as_it_is_written_gives_the_same_text_whatever_the_cuts() {
        let text = "{\"t\": \"é\u{9b}x\u{202e}\u{1F600}\"}";
        let whole = escape_in_json(text).into_owned();
        for cut in 0..=text.len() {
            let mut out = Vec::new();
            let mut writer = EscapeInJson::new(&mut out);
            writer.write_all(&text.as_bytes()[..cut]).unwrap();
            writer.write_all(&text.as_bytes()[cut..]).unwrap();
            writer.flush().unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), whole, "cut at {cut}");
        }
    }

    #[test]
    fn ndjson_to_a_terminal_writes_c1_and_bidi_characters_as_json_escapes() {
        let out = print_to(OutputFormat::Ndjson, &[hostile()], true);
        assert_eq!(
            out,
            "{\"id\":\"1\",\"tags\":[],\"note\":\"a\\u001b]0;owned\\u0007\\rb\\u009b2J\\u202ec\"}\n"
        );
        let row: Value = serde_json::from_str(out.trim_end()).unwrap();
        assert_eq!(row, hostile());
        // To a file the row is the guest's text as it is.
        let raw = print_to(OutputFormat::Ndjson, &[hostile()], false);
        assert!(raw.contains('\u{9b}'), "{raw}");
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
                Output::check(
                    r#"{"api": "defender", "count": 2, "incidents": [{"id": 1}, {"id": 2}]}"#
                        .into(),
                    usize::MAX,
                )
                .unwrap(),
            )
            .unwrap();
        let out = String::from_utf8(shared.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out, "{\"id\":1}\n{\"id\":2}\n");

        let shared = Shared::default();
        let printer = RowPrinter::new(OutputFormat::Csv, vec![], Box::new(shared.clone()), false);
        printer
            .finish_object(
                Output::check(
                    r#"{"api": "graph", "incident": {"id": "7", "status": "active"}}"#.into(),
                    usize::MAX,
                )
                .unwrap(),
            )
            .unwrap();
        let out = String::from_utf8(shared.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out, "id,status\n7,active\n");
    }

    #[test]
    fn csv_neutralizes_formulas_but_not_numbers_unless_raw() {
        let formula =
            json!({"id": "=HYPERLINK(\"http://evil\")", "tags": "-5", "note": "@SUM(A1)"});
        let out = print(OutputFormat::Csv, std::slice::from_ref(&formula));
        assert_eq!(
            out,
            "id,tags,note\n\"'=HYPERLINK(\"\"http://evil\"\")\",-5,'@SUM(A1)\n"
        );
        let shared = Shared::default();
        let mut printer = RowPrinter::new(
            OutputFormat::Csv,
            vec!["id".into()],
            Box::new(shared.clone()),
            false,
        )
        .raw_csv(true);
        printer
            .row(Row::check(formula.to_string()).unwrap())
            .unwrap();
        printer.finish_dataset(&json!({})).unwrap();
        let out = String::from_utf8(shared.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out, "id\n\"=HYPERLINK(\"\"http://evil\"\")\"\n");
    }

    #[test]
    fn table_cells_escape_control_characters() {
        let out = print(
            OutputFormat::Table,
            &[json!({"id": "\u{1b}]0;owned\u{7}", "tags": "a\r\nb", "note": "\u{202e}txt"})],
        );
        assert_eq!(
            out,
            "id               tags    note\n---------------  ------  -----------\n\\e]0;owned\\u{7}  a\\r\\nb  \\u{202e}txt\n"
        );
    }

    #[test]
    fn table_streams_after_a_window_of_rows_with_the_windows_widths() {
        let mut rows: Vec<Value> = (0..TABLE_WINDOW)
            .map(|i| json!({"id": i.to_string(), "tags": "x", "note": "n"}))
            .collect();
        rows.push(json!({"id": "a-much-longer-id", "tags": "x", "note": "n"}));
        let out = print(OutputFormat::Table, &rows);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2 + TABLE_WINDOW + 1);
        assert_eq!(lines[0], "id  tags  note");
        assert_eq!(lines.last().copied(), Some("a…  x     n"));
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
