#!/bin/bash -eu
# Builds the cargo-fuzz target `program` and ships the scripted flows as its
# seed corpus. The target reads CLINIC_FAULTS; in CI it fuzzes the clean
# clinic, so any crash is a leak in the reference clinic or a harness bug.
# .ci/clusterfuzzlite-build runs this script as the base-builder image does.
cd "$SRC/crosstalk"
# The image's $SANITIZER: cargo-fuzz has address and memory; for the others
# (undefined, none) the image's RUSTFLAGS carry no sanitizer, and neither
# does the build.
case "${SANITIZER:-address}" in
address | memory) sanitizer=$SANITIZER ;;
*) sanitizer=none ;;
esac
cargo fuzz build -O --sanitizer "$sanitizer" program
cp fuzz/target/x86_64-unknown-linux-gnu/release/program "$OUT/program"
# The runner has only $OUT: the target looks for scenarios/ beside itself.
cp -r scenarios "$OUT/scenarios"
(cd fuzz/seeds/program && zip -q "$OUT/program_seed_corpus.zip" ./*)
