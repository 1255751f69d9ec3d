//! A race's reproduction replays: the fuzzer keeps a shrunk race program
//! only once it shows the leak the way `crosstalk replay` runs it (from its
//! file, with replay's number of attempts), so every reproduction the
//! fuzzer writes for `switch-race` (seeds 1 to 5, bounded by programs)
//! replays with exit 1 against the faulty clinic, and finds nothing against
//! the clean one.

mod support;

use std::time::Duration;

use crosstalk::session::{Exit, Fuzz, TargetSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_switch_race_reproduction_replays() {
    let mut races = 0;
    for seed in 1..=5 {
        let dir = support::tempdir(&format!("fuzz-race-{seed}"));
        let outcome = Fuzz {
            seed: Some(seed),
            programs: Some(3000),
            max_findings: Some(1),
            // Ceilings for a loaded machine: the programs end the run.
            time: Duration::from_secs(900),
            shrink_time: Duration::from_secs(900),
            corpus: dir.join("corpus"),
            findings: dir.join("found"),
            ..Fuzz::new(
                vec![support::root().join("scenarios")],
                TargetSpec::embedded(&["switch-race"]),
            )
        }
        .execute()
        .await
        .unwrap();
        assert_eq!(
            outcome.exit,
            Exit::Found,
            "seed {seed}: {}",
            outcome.describe()
        );
        for file in support::walk(&dir.join("found")) {
            if file.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            races += usize::from(text.contains("concurrent = true"));
            let still = support::replay(&file, &["switch-race"], &dir)
                .execute()
                .await
                .unwrap();
            assert_eq!(still.exit, Exit::Found, "seed {seed}: {}", still.describe());
            // The clean clinic shows nothing (a race program may not run
            // through there: a step whose input the race gave it).
            let fixed = support::replay(&file, &[], &dir).execute().await.unwrap();
            assert!(fixed.found.is_empty(), "seed {seed}: {}", fixed.describe());
            assert_ne!(fixed.exit, Exit::Found);
        }
    }
    assert!(races >= 3, "only {races} race reproductions");
}
