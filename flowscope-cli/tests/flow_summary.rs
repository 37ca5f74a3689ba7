//! End-to-end tests of the `flow-summary` binary: formats, stdin, exit
//! codes, determinism, and Suricata EVE schema validation of its output on
//! every capture of the shared corpus.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flow-summary"))
}

fn workspace() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn sample() -> PathBuf {
    workspace().join("samples/sample.pcap")
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("flow-summary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("UTF-8 output")
}

fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("FLOWSCOPE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/corpus"));
    if dir.join("pcaps").is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIP: shared corpus not found at {} (set FLOWSCOPE_CORPUS)",
            dir.display()
        );
        None
    }
}

#[test]
fn help_and_version() {
    let o = run(&["--help"]);
    assert!(o.status.success());
    let text = stdout(&o);
    for word in [
        "--format",
        "--max-flows",
        "--tcp-timeout",
        "Exit status",
        "<INPUT|--iface <IF>>",
        "--workers",
        "--cluster",
        "--duration",
    ] {
        assert!(text.contains(word), "help lacks {word}");
    }
    assert!(run(&["--version"]).status.success());
    // A bad argument is a usage error (clap's exit code 2).
    assert_eq!(run(&["--format", "xml", "x.pcap"]).status.code(), Some(2));
    assert_eq!(
        run(&["--tcp-timeout", "-3", "x.pcap"]).status.code(),
        Some(2)
    );
    // A file and an interface, or live options with a file: usage errors.
    assert_eq!(run(&["--iface", "lo", "x.pcap"]).status.code(), Some(2));
    assert_eq!(run(&["--duration", "1", "x.pcap"]).status.code(), Some(2));
    assert_eq!(run(&["--promisc", "x.pcap"]).status.code(), Some(2));
    assert_eq!(run(&[]).status.code(), Some(2));
}

#[test]
fn every_format_agrees_on_the_flows() {
    let s = sample();
    let s = s.to_str().unwrap();
    let eve = run(&["--format", "eve", s]);
    let ndjson = run(&["--format", "ndjson", s]);
    let csv = run(&["--format", "csv", s]);
    let conn = run(&["--format", "conn", s]);
    let table = run(&[s]);
    for o in [&eve, &ndjson, &csv, &conn, &table] {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // EVE carries application events too; the flows are the `flow` events.
    let eve_lines: Vec<serde_json::Value> = stdout(&eve)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("EVE line is JSON"))
        .filter(|v| v["event_type"] == "flow")
        .collect();
    let nd_lines: Vec<serde_json::Value> = stdout(&ndjson)
        .lines()
        .map(|l| serde_json::from_str(l).expect("NDJSON line is JSON"))
        .collect();
    let csv_rows = stdout(&csv).lines().count() - 1;
    let conn_rows = stdout(&conn)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count();
    assert!(!eve_lines.is_empty());
    assert_eq!(eve_lines.len(), nd_lines.len());
    assert_eq!(eve_lines.len(), csv_rows);
    assert_eq!(eve_lines.len(), conn_rows);
    let flows_line = stdout(&table)
        .lines()
        .find(|l| l.starts_with("flows"))
        .map(|l| l.split_whitespace().last().unwrap().to_string())
        .unwrap();
    assert_eq!(flows_line, eve_lines.len().to_string());
    // Same flows, same order, same counters, in EVE and NDJSON.
    let packets: u64 = eve_lines
        .iter()
        .map(|v| {
            assert_eq!(v["event_type"], "flow");
            v["flow"]["pkts_toserver"].as_u64().unwrap()
                + v["flow"]["pkts_toclient"].as_u64().unwrap()
        })
        .sum();
    let table_packets = stdout(&table)
        .lines()
        .find(|l| l.starts_with("packets"))
        .and_then(|l| l.split_whitespace().last().map(str::to_string))
        .unwrap();
    assert_eq!(
        packets.to_string(),
        table_packets,
        "every packet of the sample is in a flow"
    );
    for (e, n) in eve_lines.iter().zip(&nd_lines) {
        assert_eq!(e["flow_id"], n["flow_id"]);
        // EVE spells IPv6 in full as Suricata does; NDJSON compresses it.
        let ip = |v: &serde_json::Value| v.as_str().unwrap().parse::<std::net::IpAddr>().unwrap();
        assert_eq!(ip(&e["src_ip"]), ip(&n["src_ip"]));
        assert_eq!(ip(&e["dest_ip"]), ip(&n["dest_ip"]));
        assert_eq!(e["community_id"], n["community_id"]);
    }
    // The Zeek log has its header and footer.
    let c = stdout(&conn);
    assert!(c.starts_with("#separator \\x09\n"));
    assert!(c
        .lines()
        .any(|l| l.starts_with("#fields\tts\tuid\tid.orig_h")));
    assert!(c.trim_end().lines().last().unwrap().starts_with("#close\t"));
}

#[test]
fn stdin_output_file_and_determinism() {
    let s = sample();
    let file_run = run(&["--format", "ndjson", s.to_str().unwrap()]);
    let mut child = bin()
        .args(["--format", "ndjson", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(&s).unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let stdin_run = child.wait_with_output().unwrap();
    assert!(stdin_run.status.success());
    assert_eq!(
        stdin_run.stdout, file_run.stdout,
        "stdin and file give the same flows"
    );
    let again = run(&["--format", "ndjson", s.to_str().unwrap()]);
    assert_eq!(
        again.stdout, file_run.stdout,
        "two runs give identical output"
    );

    let out = std::env::temp_dir().join(format!("flow-summary-test-{}.json", std::process::id()));
    let o = run(&[
        "--format",
        "ndjson",
        "-o",
        out.to_str().unwrap(),
        s.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert!(o.stdout.is_empty());
    assert_eq!(std::fs::read(&out).unwrap(), file_run.stdout);
    let _ = std::fs::remove_file(&out);
}

#[test]
fn unreadable_input_exits_1_with_one_line() {
    let o = run(&["/nonexistent/capture.pcap"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("flow-summary: /nonexistent/capture.pcap:"),
        "{err}"
    );

    let not_capture = workspace().join("README.md");
    let o = run(&[not_capture.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("offset 0"));
}

#[test]
fn damaged_capture_exits_3_after_its_flows() {
    // The sample cut in the middle of a record: every packet before the cut
    // is summarised, then exit status 3 names the offset.
    let bytes = std::fs::read(sample()).unwrap();
    let cut = bytes.len() - 100;
    let path = std::env::temp_dir().join(format!("flow-summary-cut-{}.pcap", std::process::id()));
    std::fs::write(&path, &bytes[..cut]).unwrap();
    let o = run(&["--format", "eve", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("offset"), "{err}");
    assert!(
        stdout(&o).lines().count() > 10,
        "flows before the damage are still written"
    );
}

/// Validates EVE lines against Suricata's schema with Python's `jsonschema`.
/// Returns `None` (with the reason printed) when the validator is unavailable.
fn validate_eve(lines_file: &Path) -> Option<Result<usize, String>> {
    let schemas = std::env::var_os("FLOWSCOPE_SCHEMAS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/schemas"));
    let schema = schemas.join("suricata-eve.schema.json");
    if !schema.is_file() {
        eprintln!(
            "SKIP: EVE schema not found at {} (set FLOWSCOPE_SCHEMAS)",
            schema.display()
        );
        return None;
    }
    let script = r#"
import json, sys
try:
    import jsonschema
except ImportError:
    print("NO_JSONSCHEMA"); sys.exit(0)
schema = json.load(open(sys.argv[1]))
v = jsonschema.Draft202012Validator(schema) if hasattr(jsonschema, "Draft202012Validator") else jsonschema.Draft7Validator(schema)
n = 0
for i, line in enumerate(open(sys.argv[2])):
    errs = list(v.iter_errors(json.loads(line)))
    if errs:
        print("INVALID line %d: %s: %s" % (i + 1, errs[0].message, line.strip()[:300])); sys.exit(1)
    n += 1
print("VALID %d" % n)
"#;
    let out = match Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&schema)
        .arg(lines_file)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("SKIP: python3 not available ({e})");
            return None;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if text.contains("NO_JSONSCHEMA") {
        eprintln!("SKIP: python3 has no jsonschema module (pip install jsonschema)");
        return None;
    }
    Some(match text.trim().strip_prefix("VALID ") {
        Some(n) if out.status.success() => Ok(n.parse().unwrap_or(0)),
        _ => Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr))),
    })
}

#[test]
fn eve_output_validates_against_suricata_schema_on_the_whole_corpus() {
    let Some(dir) = corpus_dir() else { return };
    let mut all = Vec::new();
    let mut files = 0;
    let mut captures: Vec<PathBuf> = std::fs::read_dir(dir.join("pcaps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    captures.sort();
    captures.push(sample());
    for path in &captures {
        let o = run(&["--format", "eve", path.to_str().unwrap()]);
        // 0 for clean captures, 3 for the damaged ones; never a crash.
        assert!(
            matches!(o.status.code(), Some(0) | Some(3)),
            "{}: {:?}",
            path.display(),
            o.status
        );
        all.extend_from_slice(&o.stdout);
        files += 1;
    }
    let lines = all.iter().filter(|b| **b == b'\n').count();
    assert!(files > 100 && lines > 1000, "{files} files, {lines} lines");
    // The application events are part of what is validated.
    let text = String::from_utf8_lossy(&all);
    for kind in ["http", "tls", "dns"] {
        let n = text.matches(&format!("\"event_type\":\"{kind}\"")).count();
        assert!(n > 50, "only {n} {kind} events in the corpus EVE output");
    }
    let tmp = std::env::temp_dir().join(format!("flow-summary-eve-{}.json", std::process::id()));
    std::fs::write(&tmp, &all).unwrap();
    let verdict = validate_eve(&tmp);
    let _ = std::fs::remove_file(&tmp);
    match verdict {
        None => {}
        Some(Ok(n)) => assert_eq!(n, lines),
        Some(Err(e)) => panic!("EVE schema violation: {e}"),
    }
}
