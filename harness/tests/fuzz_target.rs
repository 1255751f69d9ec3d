//! The cargo-fuzz target's body on stable Rust: fixed inputs against clean
//! and faulty in-process clinics, and the committed seed corpus kept current.

use std::path::Path;

use clinic::{Fault, Faults};
use crosstalk::embedded::FuzzTarget;
use crosstalk::fuzzer::{random_bytes, seed_inputs};

#[test]
fn the_scripted_seeds_and_random_inputs_are_clean_against_the_clean_clinic() {
    let target = FuzzTarget::new(Faults::none()).unwrap();
    for input in seed_inputs(target.vocabularies()) {
        let leaks = target.run(&input);
        assert!(
            leaks.is_empty(),
            "{:#?}",
            leaks.iter().map(|f| &f.summary).collect::<Vec<_>>()
        );
    }
    for i in 0..40 {
        let input = random_bytes(77, i, 64 + i as usize * 37);
        let leaks = target.run(&input);
        assert!(
            leaks.is_empty(),
            "input {i}: {:#?}",
            leaks.iter().map(|f| &f.summary).collect::<Vec<_>>()
        );
    }
    assert!(
        target.run(&[]).is_empty() && target.run(&[7]).is_empty(),
        "short inputs are fine"
    );
}

#[test]
fn the_scripted_seeds_find_faults_through_the_target_body() {
    for fault in [
        Fault::AppointmentIdor,
        Fault::ProfileCache,
        Fault::SwitchOwner,
        Fault::ConflictMessage,
    ] {
        let target = FuzzTarget::new(Faults::none().with(fault)).unwrap();
        let found = seed_inputs(target.vocabularies())
            .iter()
            .any(|input| !target.run(input).is_empty());
        assert!(found, "{fault}: no seed input leaked");
    }
}

/// `fuzz/seeds/program/` holds the scripted flows as libFuzzer inputs.
/// `CROSSTALK_WRITE_SEEDS=1 cargo test --test fuzz_target` rewrites them.
#[test]
fn the_committed_seed_corpus_is_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/program");
    let target = FuzzTarget::new(Faults::none()).unwrap();
    let seeds = seed_inputs(target.vocabularies());
    if std::env::var_os("CROSSTALK_WRITE_SEEDS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (vocab, seed) in target.vocabularies().iter().zip(&seeds) {
            std::fs::write(dir.join(&vocab.scenario), seed).unwrap();
        }
    }
    for (vocab, seed) in target.vocabularies().iter().zip(&seeds) {
        let committed = std::fs::read(dir.join(&vocab.scenario)).unwrap_or_default();
        assert_eq!(
            &committed, seed,
            "fuzz/seeds/program/{} is stale: rerun with CROSSTALK_WRITE_SEEDS=1",
            vocab.scenario
        );
    }
}
