//! go-livepeer's capability bits (`core/capabilities.go`) and its matching rule: bit `c` is in
//! word `c / 64` of a [`Capabilities`] bitstring.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const H264: u32 = 0;
pub const MPEGTS: u32 = 1;
pub const MP4: u32 = 2;
pub const FRACTIONAL_FRAMERATES: u32 = 3;
pub const STORAGE_DIRECT: u32 = 4;
pub const PROFILE_H264_BASELINE: u32 = 7;
pub const PROFILE_H264_MAIN: u32 = 8;
pub const PROFILE_H264_HIGH: u32 = 9;
pub const PROFILE_H264_CONSTRAINED_HIGH: u32 = 10;
pub const GOP: u32 = 11;
pub const AUTH_TOKEN: u32 = 12;
/// go-livepeer's first AI capability (`TextToImage`); the AI pipelines follow in lp-config's
/// `AI_PIPELINES` order (27 text-to-image … 36 text-to-speech).
pub const FIRST_AI: u32 = 27;

/// `Capabilities`: what a node can do (bitstring) and what it insists on (mandatories).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub bitstring: Vec<u64>,
    pub mandatories: Vec<u64>,
    pub capacities: BTreeMap<u32, u32>,
    pub version: String,
    /// go-livepeer's `Constraints.PerCapability`: for each AI capability, the models offered
    /// (or, in a request, the model wanted).
    #[serde(default)]
    pub constraints: BTreeMap<u32, BTreeMap<String, ModelConstraint>>,
}

/// go-livepeer's `ModelConstraint`: one model of an AI capability.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelConstraint {
    /// Loaded and kept loaded (no load time on the first request).
    pub warm: bool,
    /// Jobs the orchestrator takes at once for it.
    pub capacity: u32,
    /// Of those, how many are running now.
    #[serde(default)]
    pub capacity_in_use: u32,
}

impl Capabilities {
    /// The transcoding capabilities this build offers.
    pub fn transcoding() -> Self {
        let mut caps = Capabilities { version: env!("CARGO_PKG_VERSION").to_string(), ..Default::default() };
        for c in [
            H264,
            MPEGTS,
            MP4,
            FRACTIONAL_FRAMERATES,
            STORAGE_DIRECT,
            PROFILE_H264_BASELINE,
            PROFILE_H264_MAIN,
            PROFILE_H264_HIGH,
            PROFILE_H264_CONSTRAINED_HIGH,
            GOP,
            AUTH_TOKEN,
        ] {
            caps.set(c);
        }
        caps.mandatories = vec![1 << AUTH_TOKEN];
        caps
    }

    pub fn set(&mut self, cap: u32) {
        let word = (cap / 64) as usize;
        if self.bitstring.len() <= word {
            self.bitstring.resize(word + 1, 0);
        }
        self.bitstring[word] |= 1 << (cap % 64);
    }

    /// go-livepeer's rule: every bit the requester needs is offered, and every bit the offerer
    /// makes mandatory is in the request.
    pub fn compatible_with(&self, offered: &Capabilities) -> bool {
        offered.offers(self) && covers(&offered.mandatories, &self.bitstring)
    }

    /// Whether every bit `wanted` has is offered here (a worker and the job it may run).
    pub fn offers(&self, wanted: &Capabilities) -> bool {
        covers(&wanted.bitstring, &self.bitstring)
    }

    /// The model `model_id` of AI capability `cap`, if offered here.
    pub fn model(&self, cap: u32, model_id: &str) -> Option<&ModelConstraint> {
        self.constraints.get(&cap)?.get(model_id)
    }
}

/// Every bit of `want` is in `have`.
fn covers(want: &[u64], have: &[u64]) -> bool {
    want.iter().enumerate().all(|(i, w)| w & have.get(i).copied().unwrap_or(0) == *w)
}
