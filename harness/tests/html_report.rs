//! The HTML report (`--html`): a faulty clinic's run renders a page whose
//! graph has exactly the findings' observer/victim pairs, a card for every
//! bucket, the evidence marked in place, no credential and nothing the
//! target sent as markup; a clean run's page says it passed; `replay`
//! writes the same page; and headless Chromium loads the file offline and
//! shows the banner and the graph.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use clinic::{Clinic, Fault, Faults};
use scraper::{ElementRef, Html, Selector};
use serde_json::Value;

mod support;

use support::{tempdir, text};

const CROSSTALK: &str = env!("CARGO_BIN_EXE_crosstalk");
const PASSWORD: &str = "correct horse battery staple";
const USERINFO_PASSWORD: &str = "hunter2-userinfo";
/// What a patient writes in its booking, and the clinic echoes.
const HOSTILE: &str = "<script>alert(1)</script><img src=x onerror=alert(2)>";

/// A booking flow whose reason carries markup, with a read of another
/// patient's booking and a cancellation of it: a leak and a tampering
/// under the clinic's appointment faults.
fn scenario(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("lib")).unwrap();
    let accounts = support::root().join("scenarios/lib/accounts.toml");
    std::fs::copy(accounts, dir.join("lib/accounts.toml")).unwrap();
    let text = format!(
        r#"
include = ["lib/accounts.toml"]

[[steps]]
name = "book"
actor = "patient"
request = "POST /v1/appointments"
body = {{ clinician_id = "{{{{clinician.id}}}}", slot = "{{{{unique_time}}}}", reason = "{{{{canary}}}} {HOSTILE}" }}
expect = {{ status = 201 }}
capture = {{ appointment_id = "$.id", clinician_id = {{ json = "$.clinician_id", shared = true }} }}
grant_to = "{{{{clinician_id}}}}"

[[steps]]
name = "read own appointment"
actor = "patient"
request = "GET /v1/appointments/{{{{appointment_id}}}}"
expect = {{ status = 200 }}

[[steps]]
name = "read another patient's appointment"
actor = "patient"
request = "GET /v1/appointments/{{{{peer.appointment_id}}}}"
expect = {{ status = 404 }}

[[steps]]
name = "cancel another patient's appointment"
actor = "patient"
request = "DELETE /v1/appointments/{{{{peer.appointment_id}}}}"
"#
    );
    let file = dir.join("booking.toml");
    std::fs::write(&file, text).unwrap();
    file
}

/// `crosstalk run` of the scenario against a clinic served with `faults`,
/// its URL holding a password: the exit code, the page and the JSON report.
fn run(name: &str, faults: Faults) -> (Option<i32>, String, Value) {
    let served = support::serve(move || Clinic::in_memory(faults).unwrap().router());
    let target = served.replace("http://", &format!("http://admin:{USERINFO_PASSWORD}@"));
    let file = scenario(&tempdir(&format!("{name}-input")));
    let dir = tempdir(name);
    let out = support::command(CROSSTALK)
        .arg("run")
        .arg(&file)
        .args(["--target", &target, "--patients", "3", "--seed", "5"])
        .arg("--no-snapshots")
        .arg("--findings")
        .arg(dir.join("findings"))
        .arg("--json")
        .arg(dir.join("report.json"))
        .arg("--html")
        .arg(dir.join("report.html"))
        .output()
        .unwrap();
    let page = std::fs::read_to_string(dir.join("report.html"))
        .unwrap_or_else(|_| panic!("no page: {}", text(&out.stderr)));
    let report = std::fs::read_to_string(dir.join("report.json")).unwrap();
    (
        out.status.code(),
        page,
        serde_json::from_str(&report).unwrap(),
    )
}

fn faulty() -> Faults {
    Faults::none()
        .with(Fault::AppointmentIdor)
        .with(Fault::AppointmentWriteIdor)
}

fn select<'a>(page: &'a Html, css: &str) -> Vec<ElementRef<'a>> {
    page.select(&Selector::parse(css).unwrap()).collect()
}

fn text_of(element: &ElementRef) -> String {
    element.text().collect()
}

/// Every finding of the run's findings file.
fn findings(report: &Value) -> Vec<Value> {
    let file = report["findings_file"].as_str().expect("a findings file");
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The graph's edges as (kind, from, to) with their weights.
fn edges(page: &Html) -> BTreeMap<(String, String, String), u64> {
    select(page, "svg#exposure g.edge")
        .iter()
        .map(|g| {
            let attr = |name: &str| g.value().attr(name).unwrap().to_string();
            let key = (attr("data-kind"), attr("data-from"), attr("data-to"));
            (key, attr("data-count").parse().unwrap())
        })
        .collect()
}

/// The pairs the findings name: leaks from victim to observer,
/// tamperings from writer to victim.
fn pairs(findings: &[Value]) -> BTreeMap<(String, String, String), u64> {
    let mut pairs = BTreeMap::new();
    for f in findings {
        let (kind, observer, victim) = (
            f["kind"].as_str().unwrap(),
            f["observer"].as_str().unwrap().to_string(),
            f["victim"].as_str().map(str::to_string),
        );
        let key = match (kind, victim) {
            ("leak", Some(victim)) => ("leak".to_string(), victim, observer),
            ("tamper", Some(victim)) => ("tamper".to_string(), observer, victim),
            _ => continue,
        };
        *pairs.entry(key).or_insert(0) += 1;
    }
    pairs
}

/// No password, no token (the clinic's are 64 hex digits), nowhere.
fn assert_no_credential(page: &str) {
    for value in [PASSWORD, USERINFO_PASSWORD, &PASSWORD.replace(' ', "+")] {
        assert!(!page.contains(value), "the page holds `{value}`");
    }
    let token = page
        .split(|c: char| !c.is_ascii_hexdigit())
        .find(|run| run.len() >= 64);
    assert!(token.is_none(), "the page holds a token: {token:?}");
}

#[test]
fn a_faulty_run_renders_its_graph_cards_and_evidence_as_text_without_credentials() {
    let (code, source, report) = run("html-faulty", faulty());
    assert_eq!(code, Some(1), "{report}");
    let page = Html::parse_document(&source);

    // The banner agrees with the exit code.
    let banner = text_of(&select(&page, "header#verdict")[0]);
    assert!(banner.contains("crosstalk run failed"), "{banner}");
    assert!(banner.contains("exit code 1"), "{banner}");

    // The graph's edges are the findings' pairs, weighted by findings.
    let findings = findings(&report);
    let expected = pairs(&findings);
    assert!(
        expected.keys().any(|(kind, ..)| kind == "leak"),
        "{expected:?}"
    );
    assert!(
        expected.keys().any(|(kind, ..)| kind == "tamper"),
        "{expected:?}"
    );
    assert_eq!(edges(&page), expected);

    // Every bucket has its card, whose sentence names who and whose.
    let cards = select(&page, "article.card");
    let buckets = report["buckets"].as_array().unwrap();
    assert_eq!(cards.len(), buckets.len());
    for bucket in buckets {
        let key = bucket["key"].as_str().unwrap();
        let card = (cards.iter())
            .find(|c| text_of(&select_in(c, "h3")[0]).contains(key))
            .unwrap_or_else(|| panic!("no card for {key}"));
        let sentence = text_of(&select_in(card, "p.sentence")[0]);
        let first = &bucket["first"];
        if let Some(victim) = first["victim"].as_str() {
            assert!(
                sentence.contains(victim),
                "{sentence} does not name {victim}"
            );
            let observer = first["observer"].as_str().unwrap();
            assert!(
                sentence.contains(observer),
                "{sentence} does not name {observer}"
            );
        }
    }

    // The foreign canary is marked in the leak's response excerpt.
    let marked: Vec<String> = select(&page, "article[data-kind=leak] pre.response mark.foreign")
        .iter()
        .map(text_of)
        .collect();
    assert!(
        marked
            .iter()
            .any(|m| m.starts_with(report["run_id"].as_str().unwrap())),
        "{marked:?}"
    );

    // What the target sent shows as text, never as markup.
    assert!(!source.contains("<script>alert"), "unescaped markup");
    assert_eq!(
        select(&page, "script").len(),
        1,
        "only the page's own script"
    );
    assert!(
        select(&page, "img").is_empty(),
        "an element from the target"
    );
    assert!(
        select(&page, "[onerror]").is_empty(),
        "an attribute from the target"
    );
    let shown = text_of(&select(&page, "main")[0]);
    assert!(
        shown.contains("<script>alert(1)</script>"),
        "the excerpt is not shown"
    );

    assert_no_credential(&source);
}

/// Descendants of `element` matching `css`.
fn select_in<'a>(element: &ElementRef<'a>, css: &str) -> Vec<ElementRef<'a>> {
    element.select(&Selector::parse(css).unwrap()).collect()
}

#[test]
fn a_clean_run_renders_a_passing_banner_and_no_graph() {
    let (code, source, report) = run("html-clean", Faults::none());
    assert_eq!(code, Some(0), "{report}");
    let page = Html::parse_document(&source);
    let banner = text_of(&select(&page, "header#verdict")[0]);
    assert!(banner.contains("crosstalk run passed"), "{banner}");
    assert!(banner.contains("exit code 0"), "{banner}");
    assert!(select(&page, "svg#exposure").is_empty());
    assert!(select(&page, "article.card").is_empty());
    assert_no_credential(&source);
}

#[test]
fn replay_writes_the_page_of_what_it_showed() {
    let file = scenario(&tempdir("html-replay-input"));
    let replay = |faults: &[&str], name: &str| {
        let dir = tempdir(name);
        let mut command = support::command(CROSSTALK);
        command.arg("replay").arg(&file).args(["--attempts", "1"]);
        for fault in faults {
            command.args(["--fault", fault]);
        }
        let out = command
            .arg("--findings")
            .arg(dir.join("findings"))
            .arg("--html")
            .arg(dir.join("replay.html"))
            .output()
            .unwrap();
        let source = std::fs::read_to_string(dir.join("replay.html"))
            .unwrap_or_else(|_| panic!("no page: {}", text(&out.stderr)));
        (out.status.code(), Html::parse_document(&source))
    };
    let (code, page) = replay(&["appointment-idor"], "html-replay-faulty");
    assert_eq!(code, Some(1));
    let banner = text_of(&select(&page, "header#verdict")[0]);
    assert!(banner.contains("crosstalk replay failed"), "{banner}");
    assert!(!select(&page, "svg#exposure g.edge").is_empty());
    let repro = text_of(&select(&page, "article.card p.repro")[0]);
    assert!(repro.contains("booking.toml"), "{repro}");

    let (code, page) = replay(&[], "html-replay-clean");
    assert_eq!(code, Some(0));
    let banner = text_of(&select(&page, "header#verdict")[0]);
    assert!(banner.contains("crosstalk replay passed"), "{banner}");
}

/// Chromium, installed with apt when missing and this is root; `None`
/// (the test says why) when it cannot be had.
fn chromium() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/chromium");
    if path.exists() {
        return Some(path);
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| text(&o.stdout).trim() == "0");
    let apt = Path::new("/usr/bin/apt-get").exists();
    if !(root && apt) {
        eprintln!(
            "SKIPPED: no /usr/bin/chromium, and apt-get cannot install it here (not root, or no apt)"
        );
        return None;
    }
    let installed = Command::new("apt-get")
        .args(["install", "-y", "-qq", "chromium"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .is_ok_and(|s| s.success());
    if !installed || !path.exists() {
        eprintln!("SKIPPED: apt-get install chromium did not succeed");
        return None;
    }
    Some(path)
}

/// Runs headless Chromium on `url` with `args`, offline, for at most a
/// minute: its stdout.
fn headless(chromium: &Path, url: &str, args: &[String]) -> String {
    let profile = tempdir("html-chromium-profile");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,1600",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..600 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if child.try_wait().unwrap().is_none() {
        let _ = child.kill();
        panic!("chromium did not finish within a minute");
    }
    let out = child.wait_with_output().unwrap();
    text(&out.stdout)
}

#[test]
fn headless_chromium_loads_the_page_offline_and_shows_the_banner_and_graph() {
    let Some(chromium) = chromium() else {
        return;
    };
    let (code, source, _) = run("html-chromium", faulty());
    assert_eq!(code, Some(1));
    let dir = tempdir("html-chromium");
    let file = dir.join("report.html");
    std::fs::write(&file, source).unwrap();
    let url = format!("file://{}", file.display());

    let dom = headless(&chromium, &url, &["--dump-dom".to_string()]);
    let page = Html::parse_document(&dom);
    let banner = select(&page, "header#verdict");
    assert_eq!(banner.len(), 1, "no banner in the loaded page: {dom:.500}");
    assert!(text_of(&banner[0]).contains("failed"));
    assert!(!select(&page, "svg#exposure g.edge").is_empty(), "no graph");
    // The page's own script ran, offline and under its policy.
    let root = select(&page, "html")[0].value().attr("class").unwrap_or("");
    assert!(root.split(' ').any(|c| c == "js"), "the script did not run");

    let shot = dir.join("report.png");
    headless(
        &chromium,
        &url,
        &[format!("--screenshot={}", shot.display())],
    );
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    // A blank page compresses to a few kilobytes; this one shows a graph.
    assert!(
        png.len() > 30_000,
        "a blank screenshot: {} bytes",
        png.len()
    );
}

#[test]
fn the_gate_script_writes_the_page_beside_the_other_reports() {
    let dir = tempdir("html-gate");
    let out = support::command("bash")
        .arg(support::root().join(".ci/gate"))
        .env("CROSSTALK", CROSSTALK)
        .env("OUT", &dir)
        .env("PATIENTS", "3")
        .env("SEED", "2")
        .env("GATE_FLAGS", "--fault appointment-idor --no-snapshots")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let source = std::fs::read_to_string(dir.join("report.html")).expect("the gate's page");
    let page = Html::parse_document(&source);
    let banner = text_of(&select(&page, "header#verdict")[0]);
    assert!(banner.contains("exit code 1"), "{banner}");
    assert!(!select(&page, "svg#exposure g.edge").is_empty());
}

#[test]
fn fuzz_writes_the_page_of_what_it_confirmed_with_its_reproduction() {
    let dir = tempdir("html-fuzz");
    let booking = support::root().join("scenarios/booking.toml");
    let out = support::command(CROSSTALK)
        .arg("fuzz")
        .arg(&booking)
        .args([
            "--fault",
            "appointment-idor",
            "--max-findings",
            "1",
            "--seed",
            "3",
        ])
        // Bounded by programs; the time is a ceiling for a loaded machine.
        .args(["--programs", "2000", "--time", "1h"])
        .arg("--corpus")
        .arg(dir.join("corpus"))
        .arg("--findings")
        .arg(dir.join("found"))
        .arg("--html")
        .arg(dir.join("fuzz.html"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let source = std::fs::read_to_string(dir.join("fuzz.html")).expect("the fuzz page");
    let page = Html::parse_document(&source);
    let banner = text_of(&select(&page, "header#verdict")[0]);
    assert!(banner.contains("crosstalk fuzz failed"), "{banner}");
    assert!(banner.contains("exit code 1"), "{banner}");
    assert!(!select(&page, "svg#exposure g.edge").is_empty());
    // The card names the reproduction the session wrote.
    let repro = text_of(&select(&page, "article.card p.repro code")[0]);
    assert!(
        Path::new(&repro).is_file(),
        "{repro} is not the reproduction"
    );
}
