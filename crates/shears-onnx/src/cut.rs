//! Removing indices along axes of a dense little-endian payload: at once into one buffer
//! ([`slice_axes`]), or later, straight into a writer ([`CutView`]).
//!
//! A [`CutView`] is a cut not yet made: the uncut payload (usually a slice of the mapped
//! input, which costs no memory of its own) with the indices each axis loses. The pruner's
//! stages give their cut tensors as views (`shears_exec::apply_deferred`): a later stage cuts a
//! view again by composing index lists, readers that need the values get them made on demand,
//! one tensor at a time ([`crate::external::ExternalStore::read`]), and the saver streams each
//! view into the output file through one small buffer ([`CutView::write_to`]), so no cut tensor
//! is ever held in memory whole, let alone all of them at once.

use std::io::Write;

use bytes::Bytes;

/// A tensor's little-endian payload with indices removed along some axes, not yet copied.
///
/// Invariants (checked by [`CutView::new`]): `source` holds exactly `dims` elements of `elem`
/// bytes, row-major; `removed` lists distinct axes below the rank in ascending order, each with
/// sorted, unique indices below its length, in `source`'s coordinates. The view's bytes are
/// always those of [`slice_axes`] over `source`, whichever way they are produced.
#[derive(Clone)]
pub struct CutView {
    source: Bytes,
    dims: Vec<usize>,
    elem: usize,
    removed: Vec<(usize, Vec<u32>)>,
}

impl std::fmt::Debug for CutView {
    // Not the payload: it can be gigabytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CutView")
            .field("dims", &self.dims)
            .field("elem", &self.elem)
            .field(
                "removed",
                &self
                    .removed
                    .iter()
                    .map(|(a, r)| (a, r.len()))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl CutView {
    /// `source` (a payload of `dims`, `elem`-byte elements) without the indices `removed` lists
    /// per axis; an error says which invariant of the type does not hold.
    pub fn new(
        source: Bytes,
        dims: Vec<usize>,
        elem: usize,
        removed: Vec<(usize, Vec<u32>)>,
    ) -> std::result::Result<CutView, String> {
        let n = dims
            .iter()
            .try_fold(elem, |acc, &d| acc.checked_mul(d))
            .ok_or("byte size overflows")?;
        if source.len() != n {
            return Err(format!(
                "payload has {} bytes but dims {dims:?} need {n}",
                source.len()
            ));
        }
        let mut prev = None;
        for (axis, idx) in &removed {
            if *axis >= dims.len() || prev.is_some_and(|p| p >= *axis) {
                return Err(format!(
                    "cut axes must be ascending and below rank {}",
                    dims.len()
                ));
            }
            prev = Some(*axis);
            if idx.windows(2).any(|w| w[0] >= w[1])
                || idx.last().is_some_and(|&i| i as usize >= dims[*axis])
            {
                return Err(format!(
                    "removed indices of axis {axis} must be sorted, unique and below {}",
                    dims[*axis]
                ));
            }
        }
        Ok(CutView {
            source,
            dims,
            elem,
            removed,
        })
    }

    /// The dims of the cut tensor.
    pub fn dims(&self) -> Vec<usize> {
        let mut d = self.dims.clone();
        for (a, r) in &self.removed {
            d[*a] -= r.len();
        }
        d
    }

    /// The number of bytes of the cut tensor.
    pub fn len(&self) -> usize {
        self.dims().iter().product::<usize>() * self.elem
    }

    /// Whether the cut tensor has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The uncut payload the view reads.
    pub fn source(&self) -> &Bytes {
        &self.source
    }

    /// This view cut again: `more` lists, per axis (ascending), sorted indices in this view's
    /// coordinates (its kept indices, renumbered from 0). The result reads the same source,
    /// with both removals in the source's coordinates, so its bytes are those of cutting this
    /// view's bytes by `more`.
    pub fn cut(&self, more: &[(usize, &[u32])]) -> std::result::Result<CutView, String> {
        if let Some((axis, _)) = more.iter().find(|(a, _)| *a >= self.dims.len()) {
            return Err(format!("the view has no axis {axis}"));
        }
        let mut removed = Vec::new();
        for (axis, (&size, len)) in self.dims.iter().zip(self.dims()).enumerate() {
            let mine: &[u32] = self
                .removed
                .iter()
                .find(|(a, _)| *a == axis)
                .map_or(&[], |(_, r)| r);
            let extra: &[u32] = more
                .iter()
                .find(|(a, _)| *a == axis)
                .map_or(&[], |(_, r)| r);
            if let Some(&i) = extra.iter().find(|&&i| i as usize >= len) {
                return Err(format!("index {i} of axis {axis} is past the view's {len}"));
            }
            if mine.is_empty() && extra.is_empty() {
                continue;
            }
            // The view's index j is the source's j-th kept index.
            let kept: Vec<u32> = kept_runs(size, mine)
                .into_iter()
                .flat_map(|(s, e)| s as u32..e as u32)
                .collect();
            let mut all: Vec<u32> = mine.to_vec();
            all.extend(extra.iter().map(|&j| kept[j as usize]));
            all.sort_unstable();
            removed.push((axis, all));
        }
        CutView::new(self.source.clone(), self.dims.clone(), self.elem, removed)
    }

    /// The cut tensor's bytes, in one buffer of its final size.
    pub fn to_vec(&self) -> Vec<u8> {
        slice_axes(&self.source, &self.dims, self.elem, &self.axes())
    }

    /// Writes the cut tensor's bytes to `w` through one buffer of at most [`WRITE_CHUNK`]
    /// bytes, whatever the tensor's size (kept runs that long are written straight from the
    /// source); returns the number written.
    pub fn write_to(&self, w: &mut impl Write) -> std::io::Result<u64> {
        let axes = self.axes();
        let mut sink = Sink {
            w,
            buf: Vec::with_capacity(WRITE_CHUNK),
            written: 0,
            error: None,
        };
        for_each_row(&self.source, &self.dims, self.elem, &axes, |copy, row| {
            copy.stream(row, &mut sink)
        });
        sink.flush();
        if let Some(e) = sink.error {
            return Err(e);
        }
        crate::load::release_pages(&self.source);
        Ok(sink.written)
    }

    fn axes(&self) -> Vec<(usize, &[u32])> {
        self.removed
            .iter()
            .map(|(a, r)| (*a, r.as_slice()))
            .collect()
    }
}

/// The buffer [`CutView::write_to`] fills before each write: large enough that a write costs
/// little per byte, small enough to stay in the CPU's cache.
pub const WRITE_CHUNK: usize = 1 << 20;

/// Copies `data` (a row-major tensor of `dims` with `elem`-byte elements) without the indices
/// each of `cuts` removes along its axis (axes ascending and distinct, indices sorted), in one
/// pass: the result is the cuts applied axis after axis, without the intermediate copies and
/// with the output allocated once at its final size.
pub fn slice_axes(data: &[u8], dims: &[usize], elem: usize, cuts: &[(usize, &[u32])]) -> Vec<u8> {
    let Some(&(last, _)) = cuts.last() else {
        return data.to_vec();
    };
    let inner: usize = dims[last + 1..].iter().product::<usize>() * elem;
    let total = (0..=last)
        .map(|a| {
            let removed = cuts
                .iter()
                .find(|(x, _)| *x == a)
                .map_or(0, |(_, r)| r.len());
            dims[a] - removed
        })
        .product::<usize>()
        * inner;
    let mut out = Vec::with_capacity(total);
    for_each_row(data, dims, elem, cuts, |copy, row| {
        copy.append(row, &mut out)
    });
    debug_assert_eq!(out.len(), total);
    out
}

/// Calls `f` with each kept row of `data` (in output order) and how to copy its kept part: the
/// row starts at the slice's first byte. Rows are the indices of the axes before the last cut
/// one, the odometer running over their kept indices.
fn for_each_row(
    data: &[u8],
    dims: &[usize],
    elem: usize,
    cuts: &[(usize, &[u32])],
    mut f: impl FnMut(&RowCopy, &[u8]),
) {
    let Some(&(last, _)) = cuts.last() else {
        if !data.is_empty() {
            f(&RowCopy::Runs(&[(0, 1)], data.len()), data);
        }
        return;
    };
    // Per axis up to the last cut one: the kept indices, as runs of consecutive ones.
    let runs: Vec<Vec<(usize, usize)>> = (0..=last)
        .map(|a| {
            let removed = cuts
                .iter()
                .find(|(x, _)| *x == a)
                .map_or(&[][..], |(_, r)| *r);
            kept_runs(dims[a], removed)
        })
        .collect();
    let inner: usize = dims[last + 1..].iter().product::<usize>() * elem;
    // Byte stride of each axis up to `last`.
    let mut stride = vec![inner; last + 1];
    for a in (0..last).rev() {
        stride[a] = stride[a + 1] * dims[a + 1];
    }
    // An odometer over the kept indices of the axes before `last`.
    let outer_idx: Vec<Vec<usize>> = (0..last)
        .map(|a| runs[a].iter().flat_map(|&(s, e)| s..e).collect())
        .collect();
    if outer_idx.iter().any(Vec::is_empty) {
        return;
    }
    let mut pos = vec![0usize; last];
    let copy = RowCopy::new(&runs[last], inner, dims[last]);
    loop {
        let base: usize = (0..last).map(|a| outer_idx[a][pos[a]] * stride[a]).sum();
        f(&copy, &data[base..]);
        // Advance the odometer; done when it wraps past axis 0.
        let mut a = last;
        loop {
            if a == 0 {
                return;
            }
            a -= 1;
            pos[a] += 1;
            if pos[a] < outer_idx[a].len() {
                break;
            }
            pos[a] = 0;
        }
    }
}

/// How the kept runs of the last cut axis are copied out of one row: run by run, or index by
/// index with a fixed-size copy when the runs are short.
///
/// Scattered removals (25% of a matrix's columns chosen by magnitude) leave runs of two or
/// three elements: one `memcpy` call per run then costs more than the bytes it moves, while a
/// fixed-size copy per index compiles to a single load and store. Both give the same bytes.
enum RowCopy<'a> {
    /// `(start, end)` runs of indices, `inner` bytes per index.
    Runs(&'a [(usize, usize)], usize),
    /// Byte offsets of every kept index; each copies `N` bytes (`N` = `inner`).
    Gather2(Vec<usize>),
    Gather4(Vec<usize>),
    Gather8(Vec<usize>),
    /// 2- or 4-byte indices compacted sixteen bytes at a time (x86-64 with SSSE3).
    Shuffle(Shuffle),
}

impl<'a> RowCopy<'a> {
    /// Runs averaging fewer bytes than this are copied index by index.
    const SHORT_RUN_BYTES: usize = 32;

    /// How to copy the kept `runs` of `n` indices of `inner` bytes each.
    fn new(runs: &'a [(usize, usize)], inner: usize, n: usize) -> Self {
        let kept: usize = runs.iter().map(|(s, e)| e - s).sum();
        let short = !runs.is_empty() && kept * inner < Self::SHORT_RUN_BYTES * runs.len();
        let offsets = || -> Vec<usize> {
            runs.iter()
                .flat_map(|&(s, e)| s..e)
                .map(|i| i * inner)
                .collect()
        };
        if short {
            if let Some(s) = Shuffle::new(runs, inner, n) {
                return RowCopy::Shuffle(s);
            }
        }
        match inner {
            2 if short => RowCopy::Gather2(offsets()),
            4 if short => RowCopy::Gather4(offsets()),
            8 if short => RowCopy::Gather8(offsets()),
            _ => RowCopy::Runs(runs, inner),
        }
    }

    /// Appends the kept bytes of the row starting at `row[0]` to `out`.
    fn append(&self, row: &[u8], out: &mut Vec<u8>) {
        match self {
            RowCopy::Runs(runs, inner) => {
                for &(s, e) in *runs {
                    out.extend_from_slice(&row[s * inner..e * inner]);
                }
            }
            RowCopy::Gather2(offsets) => gather::<2>(row, offsets, out),
            RowCopy::Gather4(offsets) => gather::<4>(row, offsets, out),
            RowCopy::Gather8(offsets) => gather::<8>(row, offsets, out),
            RowCopy::Shuffle(s) => {
                s.blocks(row, 0..s.blocks.len(), out);
                gather_n(row, &s.tail, s.elem, out);
            }
        }
    }
}

impl RowCopy<'_> {
    /// [`RowCopy::append`] into `sink`, in pieces that keep its buffer under [`WRITE_CHUNK`].
    fn stream(&self, row: &[u8], sink: &mut Sink<impl Write>) {
        match self {
            RowCopy::Runs(runs, inner) => {
                for &(s, e) in *runs {
                    sink.put(&row[s * inner..e * inner]);
                }
            }
            RowCopy::Gather2(offsets) => sink.gather::<2>(row, offsets),
            RowCopy::Gather4(offsets) => sink.gather::<4>(row, offsets),
            RowCopy::Gather8(offsets) => sink.gather::<8>(row, offsets),
            RowCopy::Shuffle(s) => {
                let per = WRITE_CHUNK / 16;
                for b0 in (0..s.blocks.len()).step_by(per) {
                    let b1 = (b0 + per).min(s.blocks.len());
                    if sink.buf.len() + 16 * (b1 - b0) > WRITE_CHUNK {
                        sink.flush();
                    }
                    s.blocks(row, b0..b1, &mut sink.buf);
                }
                gather_n(row, &s.tail, s.elem, &mut sink.buf);
            }
        }
    }
}

/// A row's kept indices of `elem` bytes (2 or 4) compacted with a byte shuffle: each whole
/// 16-byte block of the row is loaded, its kept bytes moved to the front by the block's
/// control, and stored at the output's end, which then advances by the kept bytes only; the
/// indices past the last whole block are copied one by one. The same bytes as
/// [`gather`], several times faster when most indices are kept in short runs.
///
/// Invariant: `blocks[b]` is the control and kept byte count of bytes `16b..16b+16` of a row;
/// `tail` holds the byte offsets of the kept indices after the last whole block.
struct Shuffle {
    blocks: Vec<([u8; 16], u8)>,
    tail: Vec<usize>,
    elem: usize,
}

impl Shuffle {
    /// The shuffle for kept `runs` of `n` indices of `elem` bytes, or `None` where it does
    /// not apply (another size, no whole block, or a CPU without SSSE3).
    fn new(runs: &[(usize, usize)], elem: usize, n: usize) -> Option<Shuffle> {
        if !matches!(elem, 2 | 4) || n * elem < 16 || !shuffle_supported() {
            return None;
        }
        let per = 16 / elem;
        let whole = n / per;
        let mut kept = vec![false; n];
        for &(s, e) in runs {
            kept[s..e].iter_mut().for_each(|k| *k = true);
        }
        let blocks = (0..whole)
            .map(|b| {
                let mut control = [0x80u8; 16];
                let mut at = 0;
                for i in (b * per..(b + 1) * per).filter(|&i| kept[i]) {
                    for k in 0..elem {
                        control[at] = ((i - b * per) * elem + k) as u8;
                        at += 1;
                    }
                }
                (control, at as u8)
            })
            .collect();
        let tail = (whole * per..n)
            .filter(|&i| kept[i])
            .map(|i| i * elem)
            .collect();
        Some(Shuffle { blocks, tail, elem })
    }

    /// Appends the kept bytes of `blocks` of the row starting at `row[0]` to `out`.
    fn blocks(&self, row: &[u8], blocks: std::ops::Range<usize>, out: &mut Vec<u8>) {
        assert!(row.len() >= 16 * blocks.end, "the row holds its blocks");
        // Each store writes 16 bytes, of which only the kept ones count: room for the last.
        out.reserve(16 * blocks.len() + 16);
        #[cfg(target_arch = "x86_64")]
        {
            let start = out.len();
            // SAFETY: `new` made a Shuffle only where SSSE3 is present; the loads read
            // `row[16b..16b+16]` for b in `blocks`, inside `row` (asserted); the stores write at
            // most 16 bytes from `start + written`, which stays below `start + 16 * blocks.len()`
            // + 16, inside the reserved capacity; `set_len` covers only the kept bytes, all
            // written.
            unsafe {
                let written = shuffle_ssse3(
                    row,
                    &self.blocks[blocks.clone()],
                    blocks.start,
                    out.as_mut_ptr().add(start),
                );
                out.set_len(start + written);
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("a Shuffle is only made on x86-64");
    }
}

/// Whether the CPU has the byte shuffle [`Shuffle`] uses.
fn shuffle_supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("ssse3")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Compacts `blocks` (from block `first` of `row`) into `dst`; returns the bytes kept.
///
/// # Safety
/// The CPU has SSSE3; `row` holds `16 * (first + blocks.len())` bytes; `dst` has room for
/// the kept bytes plus 16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3")]
unsafe fn shuffle_ssse3(
    row: &[u8],
    blocks: &[([u8; 16], u8)],
    first: usize,
    dst: *mut u8,
) -> usize {
    use std::arch::x86_64::*;
    let mut at = 0usize;
    for (k, (control, kept)) in blocks.iter().enumerate() {
        // SAFETY: in bounds by the function's contract.
        unsafe {
            let v = _mm_loadu_si128(row.as_ptr().add(16 * (first + k)).cast());
            let c = _mm_loadu_si128(control.as_ptr().cast());
            _mm_storeu_si128(dst.add(at).cast(), _mm_shuffle_epi8(v, c));
        }
        at += *kept as usize;
    }
    at
}

/// Appends the `elem` bytes at each of `offsets` in `row` to `out`.
fn gather_n(row: &[u8], offsets: &[usize], elem: usize, out: &mut Vec<u8>) {
    for &o in offsets {
        out.extend_from_slice(&row[o..o + elem]);
    }
}

/// [`CutView::write_to`]'s buffered writer; the first error is kept and later writes dropped.
struct Sink<'w, W: Write> {
    w: &'w mut W,
    buf: Vec<u8>,
    written: u64,
    error: Option<std::io::Error>,
}

impl<W: Write> Sink<'_, W> {
    fn write(&mut self, bytes: &[u8]) {
        if self.error.is_none() {
            match self.w.write_all(bytes) {
                Ok(()) => self.written += bytes.len() as u64,
                Err(e) => self.error = Some(e),
            }
        }
    }

    fn flush(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        self.write(&buf);
        self.buf = buf;
        self.buf.clear();
    }

    fn put(&mut self, bytes: &[u8]) {
        if bytes.len() >= WRITE_CHUNK {
            self.flush();
            self.write(bytes);
            return;
        }
        if self.buf.len() + bytes.len() > WRITE_CHUNK {
            self.flush();
        }
        self.buf.extend_from_slice(bytes);
    }

    fn gather<const N: usize>(&mut self, row: &[u8], offsets: &[usize]) {
        for part in offsets.chunks(WRITE_CHUNK / N) {
            if self.buf.len() + part.len() * N > WRITE_CHUNK {
                self.flush();
            }
            gather::<N>(row, part, &mut self.buf);
        }
    }
}

/// Appends the `N` bytes at each of `offsets` in `row` to `out`.
fn gather<const N: usize>(row: &[u8], offsets: &[usize], out: &mut Vec<u8>) {
    // Sized first (a row's worth, still in cache when overwritten): the loop then stores into
    // a slice, without a capacity check and length update per element.
    let start = out.len();
    out.resize(start + offsets.len() * N, 0);
    for (d, &o) in out[start..].chunks_exact_mut(N).zip(offsets) {
        d.copy_from_slice(&row[o..o + N]);
    }
}

/// The indices `0..n` without `removed` (sorted), as half-open runs of consecutive indices.
fn kept_runs(n: usize, removed: &[u32]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = 0;
    for &r in removed {
        let r = r as usize;
        if r > start {
            runs.push((start, r));
        }
        start = r + 1;
    }
    if start < n {
        runs.push((start, n));
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(dims: &[usize], elem: usize) -> Bytes {
        (0..dims.iter().product::<usize>() * elem)
            .map(|i| (i * 31 % 253) as u8)
            .collect::<Vec<u8>>()
            .into()
    }

    /// A writer that takes at most `max` bytes per call, to check partial writes too.
    struct Small(Vec<u8>, usize);
    impl Write for Small {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let n = b.len().min(self.1);
            self.0.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_view_writes_and_copies_the_bytes_of_slice_axes() {
        let dims = vec![3usize, 5, 40];
        let scattered: Vec<u32> = (0..40).filter(|i| i % 3 == 0).collect();
        for elem in [1usize, 2, 4, 8] {
            let src = data(&dims, elem);
            let cases: [&[(usize, &[u32])]; 5] = [
                &[],
                &[(2, &scattered)],
                &[(1, &[1, 3]), (2, &scattered)],
                &[(0, &[2]), (1, &[0])],
                &[(0, &[0, 1, 2])],
            ];
            for cuts in cases {
                let want = slice_axes(&src, &dims, elem, cuts);
                let owned = cuts.iter().map(|(a, r)| (*a, r.to_vec())).collect();
                let v = CutView::new(src.clone(), dims.clone(), elem, owned).unwrap();
                assert_eq!(v.to_vec(), want, "{elem} {cuts:?}");
                assert_eq!(v.len(), want.len());
                let mut w = Small(Vec::new(), 7);
                assert_eq!(v.write_to(&mut w).unwrap(), want.len() as u64);
                assert_eq!(w.0, want, "{elem} {cuts:?}");
            }
        }
    }

    #[test]
    fn writes_larger_than_the_chunk_stream_through_it() {
        let dims = vec![700usize, 1000];
        let src = data(&dims, 2);
        let removed: Vec<u32> = (0..1000).filter(|i| i % 4 == 1).collect();
        let v = CutView::new(src.clone(), dims.clone(), 2, vec![(1, removed.clone())]).unwrap();
        assert!(v.len() > WRITE_CHUNK);
        let mut out = Vec::new();
        v.write_to(&mut out).unwrap();
        assert_eq!(out, slice_axes(&src, &dims, 2, &[(1, &removed)]));
    }

    /// A writer that records the writes longer than a chunk (where they start, how long).
    struct Long(Vec<u8>, Vec<(usize, usize)>);
    impl Write for Long {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if b.len() > WRITE_CHUNK {
                self.1.push((b.as_ptr() as usize, b.len()));
            }
            self.0.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn long_rows_and_runs_never_grow_the_buffer_past_a_chunk() {
        // A leading-axis cut keeps runs of whole slabs: written straight from the source. A
        // scattered cut of a long 1-D tensor gathers one long row: written in pieces.
        let big = 3 * WRITE_CHUNK;
        type Removed = Vec<(usize, Vec<u32>)>;
        let cases: [(Vec<usize>, Removed); 2] = [
            (vec![6, big / 6], vec![(0, vec![2])]),
            (
                vec![big / 2],
                vec![(0, (0..(big / 2) as u32).step_by(4).collect())],
            ),
        ];
        for (dims, removed) in cases {
            let src = data(&dims, 2);
            let (lo, hi) = (src.as_ptr() as usize, src.as_ptr() as usize + src.len());
            let v = CutView::new(src.clone(), dims.clone(), 2, removed).unwrap();
            let mut w = Long(Vec::new(), Vec::new());
            v.write_to(&mut w).unwrap();
            assert_eq!(w.0, v.to_vec(), "{dims:?}");
            for &(at, len) in &w.1 {
                assert!(
                    at >= lo && at + len <= hi,
                    "{dims:?}: a {len}-byte write not from the source"
                );
            }
        }
    }

    #[test]
    fn every_copy_of_a_row_gives_the_kept_bytes_in_order() {
        // Seeded patterns of kept indices over rows of every length around a block's.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for elem in [1usize, 2, 4, 8] {
            for n in [1usize, 7, 8, 9, 15, 16, 17, 40, 63, 64, 65, 300] {
                let row: Vec<u8> = (0..n * elem + 3).map(|_| next() as u8).collect();
                for keep_pct in [10u64, 50, 75, 100] {
                    let kept: Vec<usize> = (0..n).filter(|_| next() % 100 < keep_pct).collect();
                    let runs = kept_runs(
                        n,
                        &(0..n as u32)
                            .filter(|i| !kept.contains(&(*i as usize)))
                            .collect::<Vec<_>>(),
                    );
                    let want: Vec<u8> = kept
                        .iter()
                        .flat_map(|&i| row[i * elem..(i + 1) * elem].to_vec())
                        .collect();
                    let copy = RowCopy::new(&runs, elem, n);
                    let mut got = vec![9u8; 5];
                    copy.append(&row, &mut got);
                    assert_eq!(got[5..], want[..], "{elem} {n} {keep_pct}%");
                    if let Some(s) = Shuffle::new(&runs, elem, n) {
                        let mut got = Vec::new();
                        s.blocks(&row, 0..s.blocks.len(), &mut got);
                        gather_n(&row, &s.tail, elem, &mut got);
                        assert_eq!(got, want, "shuffle {elem} {n} {keep_pct}%");
                    }
                }
            }
        }
    }

    #[test]
    fn cutting_a_view_composes_with_its_cut() {
        let dims = vec![6usize, 4, 10];
        let src = data(&dims, 4);
        let first = CutView::new(
            src.clone(),
            dims.clone(),
            4,
            vec![(0, vec![1, 4]), (2, vec![0, 5, 9])],
        )
        .unwrap();
        // Second cut in the first view's coordinates: [4, 4, 7].
        let more: [(usize, &[u32]); 3] = [(0, &[0, 3]), (1, &[2]), (2, &[1, 6])];
        let twice = first.cut(&more).unwrap();
        let want = slice_axes(&first.to_vec(), &first.dims(), 4, &more);
        assert_eq!(twice.to_vec(), want);
        assert_eq!(twice.dims(), vec![2, 3, 5]);
        assert!(first.cut(&[(1, &[4])]).is_err(), "past the view's axis");
        assert!(first.cut(&[(3, &[0])]).is_err(), "past the rank");
    }

    #[test]
    fn views_breaking_an_invariant_are_refused() {
        let src = data(&[2, 3], 1);
        assert!(CutView::new(src.clone(), vec![2, 4], 1, vec![]).is_err());
        assert!(CutView::new(src.clone(), vec![2, 3], 1, vec![(2, vec![0])]).is_err());
        assert!(CutView::new(src.clone(), vec![2, 3], 1, vec![(1, vec![2, 1])]).is_err());
        assert!(CutView::new(src.clone(), vec![2, 3], 1, vec![(1, vec![3])]).is_err());
        assert!(CutView::new(src, vec![2, 3], 1, vec![(1, vec![0]), (0, vec![0])]).is_err());
    }
}
