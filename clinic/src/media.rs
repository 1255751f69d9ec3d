//! The media pipeline: a finished call leg is handed to an encoder, which
//! takes a moment (a network hop to a media server in a real clinic) and
//! hands back the title, transcript and duration that become the recording.
//! Recording media is served as WebVTT rendered from the transcript.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// How long the clinic's own encoder takes per leg.
pub const ENCODE_TIME: Duration = Duration::from_millis(3);
/// How long an encoder session on a clinician's console takes per leg (a
/// hop to the console and back): long enough for two calls' legs to overlap
/// even when a loaded machine delays one request by a few time slices, so
/// a race on it shows as often in a test as on a quiet machine.
pub const CONSOLE_ENCODE_TIME: Duration = Duration::from_millis(25);

/// What a leg of a call leaves behind.
#[derive(Debug, Clone)]
pub struct Leg {
    pub title: String,
    pub transcript: String,
    pub duration_seconds: i64,
}

impl Leg {
    /// A leg in `mode` of the call booked for `reason` with `clinician`.
    pub fn render(
        mode: &str,
        number: i64,
        reason: &str,
        clinician: &str,
        duration_seconds: i64,
    ) -> Leg {
        let excerpt: String = reason.chars().take(80).collect();
        let mode_title = if mode == "video" { "Video" } else { "Audio" };
        Leg {
            title: format!("{mode_title} consultation with {clinician}, part {number}: {excerpt}"),
            transcript: format!(
                "Patient: {reason}\n{clinician}: Thank you, let's go through that on {mode}."
            ),
            duration_seconds: duration_seconds.max(1),
        }
    }
}

/// Encoder hand-off slots, keyed by whoever owns the encoder session.
#[derive(Default)]
pub struct MediaPipeline {
    slots: Mutex<HashMap<String, Leg>>,
}

impl MediaPipeline {
    /// Hands `leg` to the encoder through `slot` and returns the encoded
    /// leg, `time` later.
    pub async fn encode(&self, slot: &str, leg: Leg, time: Duration) -> Leg {
        self.lock().insert(slot.to_string(), leg.clone());
        tokio::time::sleep(time).await;
        self.lock().get(slot).cloned().unwrap_or(leg)
    }

    /// Frees a slot once its call is over.
    pub fn release(&self, slot: &str) {
        self.lock().remove(slot);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Leg>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A recording's media: its transcript as WebVTT cues, one line a cue.
pub fn webvtt(title: &str, transcript: &str, duration_seconds: i64) -> String {
    let lines: Vec<&str> = transcript
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let per_cue_ms = (duration_seconds.max(1) * 1000) / lines.len().max(1) as i64;
    let mut out = format!("WEBVTT - {}\n", title.replace("-->", "->"));
    for (i, line) in lines.iter().enumerate() {
        let start = i as i64 * per_cue_ms;
        let (speaker, text) = line.split_once(": ").unwrap_or(("", line));
        out.push_str(&format!(
            "\n{}\n{} --> {}\n<v {}>{}\n",
            i + 1,
            timestamp(start),
            timestamp(start + per_cue_ms),
            speaker,
            text.replace("-->", "->")
        ));
    }
    out
}

fn timestamp(ms: i64) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        (ms / 60_000) % 60,
        (ms / 1000) % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webvtt_has_one_cue_per_transcript_line() {
        let leg = Leg::render("video", 2, "rash on arm", "Dr X", 10);
        let vtt = webvtt(&leg.title, &leg.transcript, leg.duration_seconds);
        assert!(vtt.starts_with("WEBVTT - Video consultation with Dr X, part 2: rash on arm\n"));
        assert!(
            vtt.contains("00:00:00.000 --> 00:00:05.000\n<v Patient>rash on arm\n"),
            "{vtt}"
        );
        assert!(
            vtt.contains("00:00:05.000 --> 00:00:10.000\n<v Dr X>"),
            "{vtt}"
        );
    }

    #[tokio::test]
    async fn separate_slots_keep_their_own_leg() {
        let pipeline = MediaPipeline::default();
        let a = Leg::render("audio", 1, "a", "Dr", 1);
        let b = Leg::render("audio", 1, "b", "Dr", 1);
        let (got_a, got_b) = tokio::join!(
            pipeline.encode("a", a.clone(), ENCODE_TIME),
            pipeline.encode("b", b.clone(), ENCODE_TIME)
        );
        assert_eq!(got_a.transcript, a.transcript);
        assert_eq!(got_b.transcript, b.transcript);
    }
}
