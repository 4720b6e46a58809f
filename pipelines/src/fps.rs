//! Frame-rate conversion by timestamp (drop / duplicate), the arithmetic of FFmpeg's `fps` filter
//! with its default `round=near`.

/// Decides at which output timestamps each input frame appears.
///
/// Input frames are pushed in presentation order. Each is rounded to its nearest output slot
/// (`round((pts - start) / interval)`, ties away from zero); a frame is shown in every slot from
/// its own up to the slot of the next frame, so frames that share a slot are dropped (all but the
/// last) and gaps are filled by repeating the previous frame. The output therefore has
/// `round(duration / interval)` frames for an input of `duration`.
///
/// A gap longer than [`MAX_FILL_SECS`] is a timestamp jump, not frames dropped: it is filled
/// with that much at most and the rest is skipped, so the output keeps the jump as a
/// passthrough rendition does. (Filled, a jump of a day in a segment of 50 frames asked for
/// millions of frames, held a worker for minutes and grew its memory without bound.)
#[derive(Debug, Clone)]
pub(crate) struct FpsConverter {
    start: Option<i64>,
    /// Output frame interval in input time-base ticks, as the fraction `num / den`.
    num: i128,
    den: i128,
    /// Next output slot to fill.
    next: i64,
    /// Whether a frame is held (pushed but not yet known to be finished).
    holding: bool,
    emitted: u64,
    /// Most slots one gap is filled with.
    max_fill: i64,
}

/// The longest gap between two frames that is filled with repeats, in seconds.
pub(crate) const MAX_FILL_SECS: u32 = 10;

impl FpsConverter {
    /// `tb`: time base of the timestamps (num, den); `rate`: output frame rate (num, den).
    /// Returns `None` for degenerate (zero or negative) rationals.
    pub(crate) fn new(tb: (i32, i32), rate: (u32, u32)) -> Option<Self> {
        let num = i128::from(tb.1) * i128::from(rate.1);
        let den = i128::from(tb.0) * i128::from(rate.0);
        let max_fill = (u64::from(MAX_FILL_SECS) * u64::from(rate.0)).div_ceil(u64::from(rate.1.max(1))).max(1) as i64;
        (num > 0 && den > 0).then_some(Self { start: None, num, den, next: 0, holding: false, emitted: 0, max_fill })
    }

    fn slot(&self, start: i64, pts: i64) -> i64 {
        let d = i128::from(pts) - i128::from(start);
        // round(d * den / num), ties away from zero
        let n = d * self.den;
        let q = if n >= 0 {
            (2 * n + self.num).div_euclid(2 * self.num)
        } else {
            -((-2 * n + self.num).div_euclid(2 * self.num))
        };
        q.clamp(i128::from(i64::MIN / 2), i128::from(i64::MAX / 2)) as i64
    }

    fn pts_of(&self, start: i64, slot: i64) -> i64 {
        let t = i128::from(slot) * self.num;
        let r = (2 * t + self.den).div_euclid(2 * self.den);
        (i128::from(start) + r).clamp(i128::from(i64::MIN / 2), i128::from(i64::MAX / 2)) as i64
    }

    /// A new input frame at `pts`. Appends to `out` the output timestamps at which the
    /// previously held frame must be emitted (possibly none: it is dropped); the new frame is held.
    pub(crate) fn push(&mut self, pts: i64, out: &mut Vec<i64>) {
        let start = *self.start.get_or_insert(pts);
        let s = self.slot(start, pts);
        if self.holding {
            self.fill(start, s, out);
        }
        self.holding = true;
    }

    /// Appends the held frame's slots from the next one up to (not including) `until`, at most
    /// `max_fill` of them, and moves on to `until`.
    fn fill(&mut self, start: i64, until: i64, out: &mut Vec<i64>) {
        let end = until.min(self.next.saturating_add(self.max_fill));
        while self.next < end {
            out.push(self.pts_of(start, self.next));
            self.next += 1;
            self.emitted += 1;
        }
        self.next = self.next.max(until);
    }

    /// End of input at `end_pts` (the end of the last frame). Appends the timestamps at which
    /// the held frame must be emitted; the output always has at least one frame.
    pub(crate) fn finish(&mut self, end_pts: i64, out: &mut Vec<i64>) {
        let Some(start) = self.start else { return };
        if !self.holding {
            return;
        }
        let end = self.slot(start, end_pts);
        self.fill(start, end, out);
        if self.emitted == 0 {
            out.push(self.pts_of(start, self.next));
            self.next += 1;
            self.emitted += 1;
        }
        self.holding = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `n` input frames `step` ticks apart (1/90000) through a converter to `rate`, returning
    /// (input index, output pts) pairs.
    fn run(n: i64, step: i64, start: i64, rate: (u32, u32)) -> Vec<(i64, i64)> {
        let mut c = FpsConverter::new((1, 90000), rate).unwrap();
        let mut res = Vec::new();
        let mut out = Vec::new();
        for i in 0..n {
            out.clear();
            c.push(start + i * step, &mut out);
            res.extend(out.iter().map(|&p| (i - 1, p)));
        }
        out.clear();
        c.finish(start + n * step, &mut out);
        res.extend(out.iter().map(|&p| (n - 1, p)));
        res
    }

    #[test]
    fn halves_60_to_30() {
        let r = run(120, 1500, 126000, (30, 1));
        assert_eq!(r.len(), 60);
        for (k, &(i, pts)) in r.iter().enumerate() {
            assert_eq!(pts, 126000 + 3000 * k as i64);
            assert_eq!(i, 2 * k as i64);
        }
    }

    #[test]
    fn identity_at_same_rate() {
        let r = run(60, 3000, 0, (30, 1));
        assert_eq!(r.len(), 60);
        assert!(r.iter().enumerate().all(|(k, &(i, _))| i == k as i64));
    }

    #[test]
    fn doubles_30_to_60() {
        let r = run(60, 3000, 0, (60, 1));
        assert_eq!(r.len(), 120);
        assert_eq!(r[0], (0, 0));
        assert_eq!(r[1], (0, 1500));
        assert_eq!(r[119], (59, 178500));
    }

    #[test]
    fn ntsc_to_30_and_25() {
        // 60 frames of 30000/1001 = 2.002 s
        assert_eq!(run(60, 3003, 0, (30, 1)).len(), 60);
        assert_eq!(run(60, 3003, 0, (25, 1)).len(), 50);
        assert_eq!(run(60, 3000, 0, (30000, 1001)).len(), 60);
    }

    #[test]
    fn single_frame_gives_one() {
        assert_eq!(run(1, 3000, 5, (10, 1)).len(), 1);
    }

    /// Dropped frames are filled; a timestamp jump (here a day) is filled with
    /// `MAX_FILL_SECS` of repeats at most, and the frames after it keep their own timestamps.
    #[test]
    fn a_timestamp_jump_is_filled_for_max_fill_secs_at_most() {
        let mut c = FpsConverter::new((1, 90000), (30, 1)).unwrap();
        let mut out = Vec::new();
        for pts in [0, 3000, 15_000] {
            c.push(pts, &mut out);
        }
        assert_eq!(out, [0, 3000, 6000, 9000, 12000], "a gap of four frames is filled");
        out.clear();
        let day = 86_400 * 90_000;
        c.push(day, &mut out);
        assert_eq!(out.len(), (MAX_FILL_SECS * 30) as usize);
        assert_eq!(out[0], 15_000);
        out.clear();
        c.push(day + 3000, &mut out);
        c.finish(day + 6000, &mut out);
        assert_eq!(out, [day, day + 3000], "after the jump, on the source's timestamps");
        // The end of the last frame far away is no bigger a gap.
        let mut out = Vec::new();
        c.finish(day * 2, &mut out);
        assert!(out.len() <= (MAX_FILL_SECS * 30) as usize);
    }
}
