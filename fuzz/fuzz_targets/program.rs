//! libFuzzer over request programs: each input is a program over the shipped
//! scenarios' steps, run against a fresh in-process reference clinic with the
//! faults named in `CLINIC_FAULTS`. A leak is a crash, so libFuzzer keeps the
//! input; `crosstalk fuzz` and the stable tests run the same body.
#![no_main]

use std::sync::LazyLock;

use crosstalk::embedded::FuzzTarget;
use libfuzzer_sys::fuzz_target;

static TARGET: LazyLock<FuzzTarget> = LazyLock::new(FuzzTarget::from_env);

fuzz_target!(|data: &[u8]| {
    if let Some(leak) = TARGET.run(data).first() {
        panic!("patient data leak: {}", leak.summary);
    }
});
