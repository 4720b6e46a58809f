//! Frame-rate conversion by timestamp (drop / duplicate), the arithmetic of FFmpeg's `fps` filter
//! with its default `round=near`.

/// Decides at which output timestamps each input frame appears.
///
/// Input frames are pushed in presentation order. Each is rounded to its nearest output slot
/// (`round((pts - start) / interval)`, ties away from zero); a frame is shown in every slot from
/// its own up to the slot of the next frame, so frames that share a slot are dropped (all but the
/// last) and gaps are filled by repeating the previous frame. The output therefore has
/// `round(duration / interval)` frames for an input of `duration`.
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
}

impl FpsConverter {
    /// `tb`: time base of the timestamps (num, den); `rate`: output frame rate (num, den).
    /// Returns `None` for degenerate (zero or negative) rationals.
    pub(crate) fn new(tb: (i32, i32), rate: (u32, u32)) -> Option<Self> {
        let num = i128::from(tb.1) * i128::from(rate.1);
        let den = i128::from(tb.0) * i128::from(rate.0);
        (num > 0 && den > 0).then_some(Self { start: None, num, den, next: 0, holding: false, emitted: 0 })
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
            while self.next < s {
                out.push(self.pts_of(start, self.next));
                self.next += 1;
                self.emitted += 1;
            }
        }
        self.holding = true;
    }

    /// End of input at `end_pts` (the end of the last frame). Appends the timestamps at which
    /// the held frame must be emitted; the output always has at least one frame.
    pub(crate) fn finish(&mut self, end_pts: i64, out: &mut Vec<i64>) {
        let Some(start) = self.start else { return };
        if !self.holding {
            return;
        }
        let end = self.slot(start, end_pts);
        while self.next < end {
            out.push(self.pts_of(start, self.next));
            self.next += 1;
            self.emitted += 1;
        }
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
}
