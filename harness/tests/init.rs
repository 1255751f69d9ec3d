//! `crosstalk init --openapi`: from the clinic's own document, a suite that
//! reaches every operation unedited, runs clean and catches faults by its
//! probes; from documents of other shapes (a cookie-session API with a form
//! login, an API with integer ids in a `data` envelope), suites that
//! `crosstalk check` accepts, with what could not be placed said. Either
//! way the session is followed through: the login names the account the
//! sign-up made, a refresh grant sends the login's refresh token, and a
//! logout comes after every step that needs the session.

mod support;

use std::path::{Path, PathBuf};

use support::{command, root, tempdir, text};

fn crosstalk() -> std::process::Command {
    command(env!("CARGO_BIN_EXE_crosstalk"))
}

/// `crosstalk init` of `document` into `dir`: its exit code and output.
fn init(document: &Path, dir: &Path, force: bool) -> (Option<i32>, String) {
    let mut cmd = crosstalk();
    cmd.args(["init", "--openapi"])
        .arg(document)
        .arg("--out")
        .arg(dir);
    if force {
        cmd.arg("--force");
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

fn written(dir: &Path) -> PathBuf {
    let files = support::walk(dir);
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[test]
fn documents_of_other_shapes_give_suites_that_check() {
    // Each fixture, its sign-up and login, what is not placed, and its last
    // step: the journal's `DELETE /session` is a logout (after every step
    // that needs the session), not the account's deletion in the teardown.
    for (fixture, recognised, unplaced, last) in [
        (
            "cookie-journal.yaml",
            "POST /register, POST /session",
            None,
            "DELETE /session",
        ),
        (
            "envelope-pharmacy.json",
            "POST /api/users, POST /api/auth/token",
            Some("GET /api/refills/{refill_id}: needs refill_id"),
            "PATCH /api/prescriptions/{{prescription_id}}",
        ),
    ] {
        let dir = tempdir("init-shapes");
        let (code, said) = init(&openapi_fixture(fixture), &dir, false);
        assert_eq!(code, Some(0), "{fixture}: {said}");
        assert!(said.contains(recognised), "{fixture}: {said}");
        if let Some(unplaced) = unplaced {
            assert!(
                said.contains(&format!("not placed: {unplaced}")),
                "{fixture}: {said}"
            );
        }
        let generated = std::fs::read_to_string(written(&dir)).unwrap();
        let steps = tables(&generated, "steps");
        let request = steps.last().map(|s| s["request"].as_str().unwrap());
        assert_eq!(request, Some(last), "{fixture}: {generated}");
        assert!(
            !generated.contains("[[teardown]]"),
            "{fixture}: {generated}"
        );
        let check = crosstalk()
            .arg("check")
            .arg(written(&dir))
            .output()
            .unwrap();
        assert!(check.status.success(), "{fixture}: {}", text(&check.stderr));
        let plan = text(&check.stdout);
        assert!(
            plan.contains("captures: token") || plan.contains("a cookie session"),
            "{plan}"
        );
    }
}

/// A suite generated from the clinic's own document, unedited: its
/// directory, the suite file and the document.
fn clinic_suite(name: &str) -> (PathBuf, String, String) {
    let dir = tempdir(name);
    let document = dir.join("openapi.json");
    std::fs::write(&document, clinic::openapi::document_json()).unwrap();
    let suite_dir = dir.join("suite");
    let (code, said) = init(&document, &suite_dir, false);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains("sign-up and login: POST /v1/patients, POST /v1/auth/login"),
        "{said}"
    );
    let suite = written(&suite_dir).to_str().unwrap().to_string();
    let text = std::fs::read_to_string(&suite).unwrap();
    let steps = tables(&text, "steps");
    let login = &steps[at(&steps, "login")];
    // One account name of the two the login offers: the sign-up's e-mail.
    assert_eq!(keys(&login["body"]), ["email", "password"], "{login:#?}");
    assert_eq!(
        login["body"]["email"],
        steps[at(&steps, "sign_up")]["body"]["email"]
    );
    let refresh = &steps[at(&steps, "refresh")];
    assert_eq!(
        refresh["body"]["refresh_token"].as_str(),
        Some("{{refresh_token}}")
    );
    assert_eq!(keys(&refresh["capture"]), ["refresh_token", "token"]);
    // The refresh, then the logout, last of the steps that need the
    // session; a login again for the teardown's deletion, with the password
    // the flow changed to.
    let logout = at(&steps, "logout");
    assert_eq!(logout, steps.len() - 2, "{:?}", names(&steps));
    assert_eq!(at(&steps, "refresh"), logout - 1, "{:?}", names(&steps));
    let again = &steps[logout + 1];
    assert_eq!(again["name"].as_str(), Some("login again"));
    assert_eq!(
        again["body"]["password"],
        steps[at(&steps, "change_password")]["body"]["new_password"]
    );
    assert_eq!(names(&tables(&text, "teardown")), ["delete_me"]);
    beyond_the_happy_path(&steps);
    (dir, suite, document.to_str().unwrap().to_string())
}

/// The probes the document implies: a booking of a peer's slot
/// (documented to answer 409) and a mode switch sent the other way at
/// once, right
/// after the step they vary; the profile update with a peer's id (the
/// read model's `id`, which the write model lacks), late.
fn beyond_the_happy_path(steps: &[toml::Table]) {
    let book = at(steps, "book");
    let slot = &steps[book]["capture"]["slot"];
    assert_eq!(slot["shared"].as_bool(), Some(true), "{slot:#?}");
    let conflict = &steps[at(steps, "probe: book with a peer's values")];
    assert_eq!(at(steps, "probe: book with a peer's values"), book + 1);
    assert_eq!(conflict["body"]["slot"].as_str(), Some("{{peer.slot}}"));
    assert_eq!(conflict["body"]["reason"], steps[book]["body"]["reason"]);
    assert!(conflict.get("expect").is_none(), "{conflict:#?}");
    // By one instance, after the flow's other steps (before the session's
    // own): a peer's id sent makes the peer's canaries no evidence.
    let update = at(steps, "update_me");
    let assigned = at(steps, "probe: update_me with a peer's ids added");
    assert!(assigned > at(steps, "cancel"), "{:?}", names(steps));
    assert!(assigned < at(steps, "refresh"), "{:?}", names(steps));
    let assigned = &steps[assigned];
    assert_eq!(assigned["instance"].as_integer(), Some(0));
    assert_eq!(assigned["body"]["id"].as_str(), Some("{{peer.patient_id}}"));
    assert_eq!(assigned["body"]["name"], steps[update]["body"]["name"]);
    let switch = at(steps, "switch");
    let race = &steps[switch + 1];
    let name = "probe: switch the other way at once";
    assert_eq!(race["name"].as_str(), Some(name));
    assert_eq!(race["concurrent"].as_bool(), Some(true));
    assert_eq!(steps[switch]["body"]["mode"].as_str(), Some("video"));
    assert_eq!(race["body"]["mode"].as_str(), Some("audio"));
    // Not a creation: the call's start is sent once.
    assert!(
        !names(steps)
            .iter()
            .any(|n| n.starts_with("probe: start the"))
    );
    // Never the sign-up or the login.
    assert!(
        !names(steps)
            .iter()
            .any(|n| n.starts_with("probe: sign_up") || n.starts_with("probe: login")),
        "{:?}",
        names(steps)
    );
}

/// The suite's `[[steps]]` (or `[[teardown]]`).
fn tables(text: &str, key: &str) -> Vec<toml::Table> {
    let suite: toml::Table = toml::from_str(text).unwrap();
    (suite[key].as_array().unwrap().iter())
        .map(|step| step.as_table().unwrap().clone())
        .collect()
}

fn names(steps: &[toml::Table]) -> Vec<&str> {
    steps.iter().map(|s| s["name"].as_str().unwrap()).collect()
}

/// Where the step named `name` is.
fn at(steps: &[toml::Table], name: &str) -> usize {
    let found = names(steps).iter().position(|n| *n == name);
    found.unwrap_or_else(|| panic!("no step {name}: {:?}", names(steps)))
}

fn keys(table: &toml::Value) -> Vec<&str> {
    table
        .as_table()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

/// The OpenAPI document fixture `name`.
fn openapi_fixture(name: &str) -> PathBuf {
    root().join("harness/tests/fixtures/openapi").join(name)
}

/// `suite` run against `target` with seed `seed`, every operation of
/// the fixture `document` (a file name) required: its exit code and report.
fn covering(
    suite: &Path,
    target: &str,
    document: &str,
    seed: &str,
    name: &str,
) -> (Option<i32>, serde_json::Value) {
    let document = openapi_fixture(document);
    let args = [
        suite.to_str().unwrap(),
        "--target",
        target,
        "--seed",
        seed,
        "--openapi",
        document.to_str().unwrap(),
        "--require-coverage",
    ];
    support::run_report(&tempdir(name), &args)
}

/// Clean over seeds 1 to 20, every operation of the document reached.
fn clean_over(seeds: std::ops::RangeInclusive<u32>) {
    let (dir, suite, document) = clinic_suite("init-clean");
    for seed in seeds {
        let seed = seed.to_string();
        let args = [
            "--seed",
            &seed,
            "--openapi",
            &document,
            "--require-coverage",
            &suite,
        ];
        let (code, report) = support::run_report(&dir.join(&seed), &args);
        assert_eq!(
            code,
            Some(0),
            "seed {seed}: {:#} {:#}",
            report["buckets"],
            report["coverage"]
        );
    }
}

#[test]
fn the_clinic_s_suite_unedited_reaches_every_operation_clean_seeds_1_to_10() {
    clean_over(1..=10);
}

#[test]
fn the_clinic_s_suite_unedited_reaches_every_operation_clean_seeds_11_to_20() {
    clean_over(11..=20);
}

#[test]
fn the_clinic_s_suite_unedited_catches_every_fault_but_the_switch_race() {
    let (dir, suite, document) = clinic_suite("init-faults");
    // Each fault and the finding that shows it: a leak, a tamper or an
    // access, most of them by a probe (those beyond the happy path named
    // by what they vary). A misfiled recording shows in the
    // patient's list of recordings, on the first page or the next: which
    // depends on the order in which the clinic served the batch's switches.
    for (fault, findings) in [
        (
            "switch-owner",
            &["leak:list_mine", "leak:list_mine, next page"][..],
        ),
        ("appointment-idor", &["leak:probe: read_appointment"]),
        ("media-idor", &["access:probe: media"]),
        ("profile-cache", &["leak:me"]),
        ("status-filter", &["leak:list"]),
        ("cursor-pagination", &["leak:list_mine, next page"]),
        ("export-demographics", &["leak:export"]),
        ("appointment-write-idor", &["tamper:probe: reschedule"]),
        ("end-by-stranger", &["tamper:probe: end"]),
        ("profile-update-idor", &["tamper:probe: update_patient"]),
        ("password-change-idor", &["tamper:probe: change_password"]),
        ("recording-delete-idor", &["tamper:probe: delete"]),
        (
            "conflict-message",
            &["leak:probe: book with a peer's values"],
        ),
        (
            "mass-assignment",
            &[
                "tamper:probe: update_me with a peer's ids added",
                "leak:probe: update_me with a peer's ids added",
            ],
        ),
    ] {
        let args = ["--seed", "1", "--fault", fault, &suite];
        let (code, report) = support::run_report(&dir.join(fault), &args);
        assert_eq!(code, Some(1), "{fault}");
        let found: Vec<String> = (report["buckets"].as_array().unwrap().iter())
            .map(|b| {
                format!(
                    "{}:{}",
                    b["first"]["kind"].as_str().unwrap(),
                    b["first"]["step"].as_str().unwrap()
                )
            })
            .collect();
        assert!(
            findings.iter().any(|f| found.contains(&f.to_string())),
            "{fault}: {found:?}"
        );
    }
    // Never over an existing suite, unless told.
    let suite_dir = Path::new(&suite).parent().unwrap().to_path_buf();
    let (code, said) = init(Path::new(&document), &suite_dir, false);
    assert_eq!(code, Some(2));
    assert!(said.contains("exists: pass --force"), "{said}");
    assert_eq!(init(Path::new(&document), &suite_dir, true).0, Some(0));
}

/// An API of another shape: user names for logins (e-mail addresses, by the
/// sign-up's schema), a login that offers three account names and fields
/// no account needs, a refresh grant that rotates a `refreshToken`, a
/// sign-out, a password change, and the account's deletion.
const TOKEN_NOTES: &str = r##"{
  "openapi": "3.1.0",
  "info": { "title": "Token Notes", "version": "1" },
  "components": {
    "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
    "schemas": {
      "Session": {
        "type": "object",
        "properties": {
          "access_token": { "type": "string" },
          "token_type": { "type": "string" },
          "refreshToken": { "type": "string" }
        }
      },
      "Note": {
        "type": "object",
        "properties": { "id": { "type": "string" }, "text": { "type": "string" } }
      }
    }
  },
  "security": [{ "bearer": [] }],
  "paths": {
    "/accounts": {
      "post": {
        "operationId": "register",
        "security": [],
        "requestBody": { "content": { "application/json": { "schema": {
          "type": "object",
          "required": ["username", "password"],
          "properties": {
            "username": { "type": "string", "format": "email" },
            "password": { "type": "string" },
            "display_name": { "type": "string" }
          }
        } } } },
        "responses": { "201": { "description": "registered", "content": { "application/json": { "schema": {
          "type": "object", "properties": { "id": { "type": "string" } }
        } } } } }
      }
    },
    "/auth/token": {
      "post": {
        "operationId": "get_token",
        "security": [],
        "requestBody": { "content": { "application/json": { "schema": {
          "type": "object",
          "required": ["password"],
          "properties": {
            "email": { "type": "string" },
            "username": { "type": "string" },
            "phone": { "type": "string" },
            "password": { "type": "string" },
            "scope": { "type": "string" },
            "client_id": { "type": "string" },
            "refresh_token": { "type": "string" }
          }
        } } } },
        "responses": { "200": { "description": "a session", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Session" } } } } }
      }
    },
    "/auth/refresh": {
      "post": {
        "operationId": "refresh",
        "security": [],
        "requestBody": { "content": { "application/json": { "schema": {
          "type": "object", "required": ["refreshToken"], "properties": { "refreshToken": { "type": "string" } }
        } } } },
        "responses": {
          "200": { "description": "a new session", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Session" } } } },
          "401": { "description": "a used refresh token" }
        }
      }
    },
    "/auth/sign-out": {
      "post": { "operationId": "sign_out", "responses": { "204": { "description": "signed out" } } }
    },
    "/notes": {
      "post": {
        "operationId": "write_note",
        "requestBody": { "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Note" } } } },
        "responses": { "201": { "description": "written", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Note" } } } } }
      }
    },
    "/notes/{note_id}": {
      "parameters": [{ "name": "note_id", "in": "path", "required": true, "schema": { "type": "string" } }],
      "get": {
        "operationId": "read_note",
        "responses": { "200": { "description": "a note", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Note" } } } } }
      },
      "delete": { "operationId": "delete_note", "responses": { "204": { "description": "deleted" } } }
    },
    "/me/password": {
      "put": {
        "operationId": "change_password",
        "requestBody": { "content": { "application/json": { "schema": {
          "type": "object",
          "properties": { "current_password": { "type": "string" }, "new_password": { "type": "string" } }
        } } } },
        "responses": { "204": { "description": "changed" } }
      }
    },
    "/me": {
      "get": { "operationId": "me", "responses": { "200": { "description": "the caller" } } },
      "delete": { "operationId": "delete_me", "responses": { "204": { "description": "deleted" } } }
    }
  }
}"##;

#[test]
fn a_login_names_the_sign_up_s_account_a_refresh_sends_its_token_and_a_sign_out_comes_last() {
    let dir = tempdir("init-session");
    let document = dir.join("token-notes.json");
    std::fs::write(&document, TOKEN_NOTES).unwrap();
    let (code, said) = init(&document, &dir.join("suite"), false);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains("sign-up and login: POST /accounts, POST /auth/token"),
        "{said}"
    );
    assert!(!said.contains("not placed"), "{said}");
    let suite = written(&dir.join("suite"));
    let generated = std::fs::read_to_string(&suite).unwrap();
    let steps = tables(&generated, "steps");
    let signup = &steps[at(&steps, "register")];
    let login = &steps[at(&steps, "get_token")];

    // The login names the account once, by the sign-up's own value (an
    // e-mail address, which the login's `username` alone would not give),
    // and sends no made-up scope, client id or refresh token.
    assert_eq!(
        signup["body"]["username"].as_str(),
        Some("{{canary}}@example.test")
    );
    assert_eq!(keys(&login["body"]), ["password", "username"], "{login:#?}");
    assert_eq!(login["body"]["username"], signup["body"]["username"]);
    assert_eq!(login["body"]["password"], signup["body"]["password"]);
    let secret = |json: &str| {
        let mut capture = toml::Table::new();
        capture.insert("json".into(), json.into());
        capture.insert("secret".into(), true.into());
        toml::Value::Table(capture)
    };
    assert_eq!(login["capture"]["token"], secret("$.access_token"));
    assert_eq!(login["capture"]["refresh_token"], secret("$.refreshToken"));

    // The refresh grant sends the refresh token the login answered, and
    // keeps the new session and refresh token it answers: the session the
    // sign-out then ends.
    let refresh_at = at(&steps, "refresh");
    let refresh = &steps[refresh_at];
    assert_eq!(refresh_at, at(&steps, "sign_out") - 1);
    assert_eq!(
        refresh["body"].as_table().unwrap().clone(),
        toml::toml! { refreshToken = "{{refresh_token}}" }
    );
    assert_eq!(refresh["capture"]["token"], secret("$.access_token"));
    assert_eq!(
        refresh["capture"]["refresh_token"],
        secret("$.refreshToken")
    );

    // The sign-out after every other step that needs the session (the
    // password change among them); then a login again with the new
    // password, for the teardown's deletion.
    let sign_out = at(&steps, "sign_out");
    let before: Vec<&str> = names(&steps[..sign_out]).into_iter().collect();
    for step in [
        "write_note",
        "read_note",
        "refresh",
        "change_password",
        "me",
        "delete_note",
    ] {
        assert!(before.contains(&step), "{step} after sign_out: {before:?}");
    }
    assert_eq!(names(&steps[sign_out + 1..]), ["get_token again"]);
    let again = &steps[sign_out + 1];
    assert_eq!(again["body"]["username"], signup["body"]["username"]);
    assert_eq!(
        again["body"]["password"],
        steps[at(&steps, "change_password")]["body"]["new_password"]
    );
    assert_ne!(again["body"]["password"], signup["body"]["password"]);
    assert_eq!(again["capture"]["token"], secret("$.access_token"));
    assert_eq!(names(&tables(&generated, "teardown")), ["delete_me"]);

    let check = crosstalk().arg("check").arg(&suite).output().unwrap();
    assert!(check.status.success(), "{}", text(&check.stderr));
}

#[test]
fn what_is_not_an_openapi_document_is_refused_clearly() {
    let dir = tempdir("init-bad");
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{\"openapi\": \"3.1.0\", \"paths\": 7}").unwrap();
    let (code, said) = init(&bad, &dir.join("out"), false);
    assert_eq!(code, Some(2));
    assert!(
        said.contains("is not an OpenAPI 3 document crosstalk can read"),
        "{said}"
    );
    assert!(!dir.join("out").exists());
}

/// `init` of the fixture document `fixture`, checked by `crosstalk check`:
/// the suite's path, its text and what `init` said.
fn fixture_suite(fixture: &str) -> (PathBuf, String, String) {
    let dir = tempdir("init-fixture");
    let (code, said) = init(&openapi_fixture(fixture), &dir, false);
    assert_eq!(code, Some(0), "{fixture}: {said}");
    let suite = written(&dir);
    let check = crosstalk().arg("check").arg(&suite).output().unwrap();
    assert!(check.status.success(), "{fixture}: {}", text(&check.stderr));
    let generated = std::fs::read_to_string(&suite).unwrap();
    (suite, generated, said)
}

#[test]
fn a_fastapi_document_with_a_relative_token_url_gives_a_suite_that_runs_clean() {
    use support::restaurant_api::{self, RestaurantApi};
    let fixture = "fastapi-restaurant.json";
    let (suite, generated, said) = fixture_suite(fixture);
    assert!(
        said.contains("sign-up and login: POST /register, POST /token"),
        "{said}"
    );
    assert!(!said.contains("not placed"), "{said}");
    let steps = tables(&generated, "steps");
    // The sign-up sends what it requires; the password grant sends its
    // grant type, the account's name and password, and no made-up client.
    let signup = &steps[at(&steps, "register_user_register_post")];
    assert_eq!(keys(&signup["body"]), ["password", "username"]);
    let login = &steps[at(&steps, "login_for_access_token_token_post")];
    assert_eq!(keys(&login["form"]), ["grant_type", "password", "username"]);
    assert_eq!(login["form"]["username"], signup["body"]["username"]);
    // The menu everyone reads feeds an order's `menu_item_id`; its fields
    // are nobody's to leak. A role takes a value the document allows.
    let menu = &steps[at(&steps, "list menu")];
    assert!(
        menu["public"]
            .as_array()
            .unwrap()
            .contains(&"$[*].name".into())
    );
    let order = &steps[at(&steps, "create_order_orders_post")];
    assert_eq!(
        order["body"]["menu_item_id"].as_str(),
        Some("{{menu_item_id}}")
    );
    let update = &steps[at(&steps, "update_profile_profile_put")];
    assert_eq!(update["body"]["role"].as_str(), Some("customer"));

    for seed in ["1", "2"] {
        let api = RestaurantApi::new();
        let served = api.clone();
        let target = support::serve(move || restaurant_api::router(served));
        let (code, report) = covering(&suite, &target, fixture, seed, "init-restaurant");
        assert_eq!(code, Some(0), "seed {seed}: {report:#}");
        let (accounts, passwords) = api.accounts_and_passwords();
        assert!(accounts >= 5, "{accounts} accounts");
        assert_eq!(passwords, accounts, "one password per instance");
    }
}

#[test]
fn a_flask_document_with_an_envelope_and_a_reset_gives_a_suite_that_runs_clean() {
    use support::bookshelf_api::{self, BookshelfApi};
    let (suite, generated, said) = fixture_suite("flask-bookshelf.yaml");
    assert!(
        said.contains("sign-up and login: POST /users/v1/register, POST /users/v1/login"),
        "{said}"
    );
    // The reset is left out and named, and nothing else is.
    let unplaced: Vec<&str> = said
        .lines()
        .filter(|l| l.starts_with("not placed"))
        .collect();
    assert_eq!(unplaced.len(), 1, "{said}");
    assert!(
        unplaced[0].starts_with("not placed: GET /createdb: resets or seeds the whole database"),
        "{said}"
    );
    assert!(!generated.contains("/createdb"), "{generated}");
    let steps = tables(&generated, "steps");
    // Path values from inside the envelope; a title the public list shows
    // carries no canary, and the list's fields are nobody's to leak.
    let signup = &steps[at(&steps, "api_views.users.register_user")];
    assert_eq!(
        signup["capture"]["username"].as_str(),
        Some("$.data.username")
    );
    let add = &steps[at(&steps, "api_views.books.add_new_book")];
    assert_eq!(
        add["capture"]["book_title"].as_str(),
        Some("$.data.book_title")
    );
    let title = add["body"]["book_title"].as_str().unwrap();
    assert!(!title.contains("canary"), "{title}");
    assert!(
        add["body"]["secret"]
            .as_str()
            .unwrap()
            .contains("{{canary}}")
    );
    let list = &steps[at(&steps, "api_views.books.get_all_books")];
    assert_eq!(
        list["public"].as_array().unwrap(),
        &["$.data[*].book_title", "$.data[*].user"].map(toml::Value::from)
    );
    let login = &steps[at(&steps, "api_views.users.login_user")];
    assert_eq!(
        login["capture"]["token"]["json"].as_str(),
        Some("$.data.auth_token")
    );

    for seed in ["1", "2"] {
        let api = BookshelfApi::new();
        let served = api.clone();
        let target = support::serve(move || bookshelf_api::router(served));
        let args = [suite.to_str().unwrap(), "--target", &target, "--seed", seed];
        let (code, report) = support::run_report(&tempdir("init-bookshelf"), &args);
        assert_eq!(code, Some(0), "seed {seed}: {report:#}");
        assert_eq!(api.resets(), 0);
        let (accounts, passwords) = api.accounts_and_passwords();
        assert!(accounts >= 5, "{accounts} accounts");
        assert_eq!(passwords, accounts, "one password per instance");
    }
}

#[test]
fn a_hal_document_with_cookie_sessions_csrf_and_etags_gives_a_suite_that_runs_clean() {
    use support::hal_api::{self, HalApi};
    let fixture = "hal-bookings.json";
    let (suite, generated, said) = fixture_suite(fixture);
    assert!(
        said.contains("sign-up and login: POST /users, POST /auth/session"),
        "{said}"
    );
    assert!(!said.contains("not placed"), "{said}");
    let steps = tables(&generated, "steps");
    assert_eq!(names(&steps)[..2], ["signUp", "signIn"]);
    // The CSRF token the sign-in answers in a header goes back on every
    // write; `If-Match` carries the booking's last `ETag`.
    let sign_in = &steps[at(&steps, "signIn")];
    assert_eq!(
        sign_in["capture"]["csrf_token"]["header"].as_str(),
        Some("x-csrf-token")
    );
    for write in ["book", "amendBooking", "signOut"] {
        let step = &steps[at(&steps, write)];
        assert_eq!(
            step["headers"]["X-CSRF-Token"].as_str(),
            Some("{{csrf_token}}"),
            "{write}"
        );
    }
    let amend = &steps[at(&steps, "amendBooking")];
    assert_eq!(
        amend["headers"]["If-Match"].as_str(),
        Some("{{booking_etag}}")
    );
    // HAL's `_embedded` list feeds a booking's camelCase `clinicianId`.
    let list = &steps[at(&steps, "list clinicians")];
    assert_eq!(
        list["capture"]["clinician_id"]["json"].as_str(),
        Some("$._embedded.clinicians[0].id")
    );
    let book = &steps[at(&steps, "book")];
    assert_eq!(
        book["body"]["clinicianId"].as_str(),
        Some("{{clinician_id}}")
    );
    // A note is named by its `_links.self.href` alone: its read follows it.
    let note = &steps[at(&steps, "writeNote")];
    assert_eq!(
        note["capture"]["note_href"].as_str(),
        Some("$._links.self.href")
    );
    let read_note = &steps[at(&steps, "readNote")];
    assert_eq!(read_note["request"].as_str(), Some("GET {{note_href}}"));

    for seed in ["1", "2"] {
        let api = HalApi::new();
        let served = api.clone();
        let target = support::serve(move || hal_api::router(served));
        let (code, report) = covering(&suite, &target, fixture, seed, "init-hal");
        assert_eq!(code, Some(0), "seed {seed}: {report:#}");
        // No write went without its CSRF token or an `If-Match`.
        assert_eq!(api.refused(), 0, "seed {seed}");
        let (accounts, passwords) = api.accounts_and_passwords();
        assert!(accounts >= 5, "{accounts} accounts");
        assert_eq!(passwords, accounts, "one password per instance");
    }
}

/// The fault `run` of the suite misses, the fuzzer of it finds (a fixed
/// seed, a bounded number of programs), with a reproduction that replays
/// against the faulty clinic and not the clean one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clinic_s_suite_fuzzed_finds_the_switch_race() {
    use crosstalk::session::{Exit, Fuzz, Replay, TargetSpec};
    let (dir, suite, _) = clinic_suite("init-fuzz");
    let outcome = Fuzz {
        seed: Some(1),
        programs: Some(1500),
        max_findings: Some(1),
        // Ceilings for a loaded machine: the programs end the run.
        time: std::time::Duration::from_secs(900),
        shrink_time: std::time::Duration::from_secs(900),
        corpus: dir.join("corpus"),
        findings: dir.join("found"),
        ..Fuzz::new(vec![suite.into()], TargetSpec::embedded(&["switch-race"]))
    }
    .execute()
    .await
    .unwrap();
    assert_eq!(outcome.exit, Exit::Found, "{}", outcome.describe());
    let replay = |file: &Path, faults: &[&str]| Replay {
        file: file.to_path_buf(),
        target: TargetSpec::embedded(faults),
        findings: dir.join("replays"),
        attempts: None,
        html: None,
        overrides: crosstalk::plan::Overrides {
            vars: [(
                "password".to_string(),
                "correct horse battery staple 7".to_string(),
            )]
            .into(),
            ..Default::default()
        },
    };
    let files = support::walk(&dir.join("found"));
    let file = (files.iter())
        .find(|f| f.extension().is_some_and(|e| e == "toml"))
        .expect("a reproduction");
    let still = replay(file, &["switch-race"]).execute().await.unwrap();
    assert_eq!(still.exit, Exit::Found, "{}", still.describe());
    // The clean clinic shows nothing (a race program may not run through
    // there: a step whose input the race gave it).
    let fixed = replay(file, &[]).execute().await.unwrap();
    assert!(fixed.found.is_empty(), "{}", fixed.describe());
    assert_ne!(fixed.exit, Exit::Found);
}
