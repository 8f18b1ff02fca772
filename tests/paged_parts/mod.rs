//! The paged problem of the paged-cache tests (`paged_reference.rs`, `decode_emulator.rs`): pages
//! shuffled, unused pages full of NaN, garbage table entries past each sequence, ragged lengths
//! including 0 and 1, any dtype and head dimension; and the comparison of the decode kernels
//! with the f64 paged reference under docs/contract.md §6's tolerances
//! (`quietattn::check::outputs`).
#![allow(dead_code)]

use quietattn::check::Expected;
use quietattn::check::outputs::{lse_tolerance, o_tolerance};
use quietattn::ops::decode::{DecodeCall, paged_decode};
use quietattn::reference::paged_attention;
use quietattn::stats::compare::check_against_reference;
use quietattn::{
    AttentionInputs, AttentionOptions, BlockTable, DType, Device, KernelChoice,
    PagedAttentionInputs, Result, Tensor, TensorView,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// Key lengths per sequence: empty, one key, inside a page, exactly a page, several pages.
pub const LENS: [usize; 6] = [0, 1, 13, 16, 70, 129];

/// Query rows per sequence of `LENS` for varlen tests (`Fixture::varlen`): none and one
/// included, and more rows than keys (2 rows on 0 keys, 3 rows on 1 key: under causal their
/// first rows see no key).
pub const Q_LENS: [usize; 6] = [2, 3, 0, 1, 4, 1];

/// Shape of one problem.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub dtype: DType,
    pub dim: usize,
    pub page_size: usize,
    pub q_len: usize,
    pub heads: usize,
    pub kv_heads: usize,
}

pub struct Fixture {
    pub shape: Shape,
    pub q: Tensor,
    /// Per sequence `[len, hkv, d]` keys and values, row-major (what the pages hold).
    pub keys: Vec<Vec<f64>>,
    pub values: Vec<Vec<f64>>,
    pub k_cache: Tensor,
    pub v_cache: Tensor,
    /// `[num_pages, page_size, kv_heads, d]` with `cache_strides` (contiguous, or rows of
    /// `d + 1` elements after `misalign_caches`).
    pub cache_shape: [usize; 4],
    pub cache_strides: [usize; 4],
    pub table: Vec<i32>,
    pub max_pages: usize,
    pub lens: Vec<i32>,
    pub sinks: Vec<f32>,
    pub gate: Tensor,
    /// Varlen queries (`Fixture::varlen`): q `[total_q, h, d]`, gate `[total_q, h]`.
    pub cu_q: Option<Vec<i32>>,
}

impl Fixture {
    pub fn new(seed: u64, s: Shape) -> Self {
        Fixture::with_lens(seed, s, &LENS)
    }

    /// The fixture with key lengths `lens` (one sequence each) in place of `LENS`.
    pub fn with_lens(seed: u64, s: Shape, lens: &[usize]) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let b = lens.len();
        let mut random =
            |n: usize| -> Vec<f64> { (0..n).map(|_| rng.random_range(-2.0..2.0)).collect() };
        let q = random(b * s.q_len * s.heads * s.dim);
        let q = Tensor::from_f64(s.dtype, &q, &[b, s.q_len, s.heads, s.dim]).unwrap();
        let row = s.kv_heads * s.dim;
        let keys: Vec<Vec<f64>> = lens.iter().map(|&n| random(n * row)).collect();
        let values: Vec<Vec<f64>> = lens.iter().map(|&n| random(n * row)).collect();
        let gate = random(b * s.q_len * s.heads);
        let gate = Tensor::from_f64(DType::F32, &gate, &[b, s.q_len, s.heads]).unwrap();
        let sinks = random(s.heads).iter().map(|&x| x as f32).collect();

        // Pages in shuffled order, plus two spare pages nobody owns.
        let needed: Vec<usize> = lens.iter().map(|n| n.div_ceil(s.page_size)).collect();
        let num_pages = needed.iter().sum::<usize>() + 2;
        let mut order: Vec<usize> = (0..num_pages).collect();
        order.shuffle(&mut rng);
        let max_pages = needed.iter().max().unwrap() + 1;
        // Past a sequence's pages: values that would fault if anyone read through them.
        let mut table = vec![-1i32; b * max_pages];
        for (i, t) in table.chunks_mut(max_pages).enumerate() {
            t[max_pages - 1] = i32::MAX - i as i32;
        }
        let page_elems = s.page_size * row;
        let mut kc = vec![f64::NAN; num_pages * page_elems];
        let mut vc = kc.clone();
        let mut next = order.into_iter();
        for i in 0..b {
            for p in 0..needed[i] {
                let page = next.next().unwrap();
                table[i * max_pages + p] = page as i32;
                let here = (lens[i] - p * s.page_size).min(s.page_size) * row;
                let (from, to) = (p * s.page_size * row, page * page_elems);
                kc[to..to + here].copy_from_slice(&keys[i][from..from + here]);
                vc[to..to + here].copy_from_slice(&values[i][from..from + here]);
            }
        }
        let cache = [num_pages, s.page_size, s.kv_heads, s.dim];
        Fixture {
            shape: s,
            q,
            keys,
            values,
            k_cache: Tensor::from_f64(s.dtype, &kc, &cache).unwrap(),
            v_cache: Tensor::from_f64(s.dtype, &vc, &cache).unwrap(),
            cache_shape: cache,
            cache_strides: [page_elems, row, s.dim, 1],
            table,
            max_pages,
            lens: lens.iter().map(|&n| n as i32).collect(),
            sinks,
            gate,
            cu_q: None,
        }
    }

    /// The fixture's pages with varlen queries: sequence `b` has `q_lens[b]` rows (one per
    /// sequence of `LENS`; `s.q_len` must be their maximum), fresh random q and gate.
    pub fn varlen(seed: u64, s: Shape, q_lens: &[usize]) -> Self {
        assert_eq!(q_lens.len(), LENS.len());
        assert_eq!(q_lens.iter().max(), Some(&s.q_len));
        let mut f = Fixture::new(seed, s);
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
        let total: usize = q_lens.iter().sum();
        let mut random =
            |n: usize| -> Vec<f64> { (0..n).map(|_| rng.random_range(-2.0..2.0)).collect() };
        f.q = Tensor::from_f64(
            s.dtype,
            &random(total * s.heads * s.dim),
            &[total, s.heads, s.dim],
        )
        .unwrap();
        f.gate = Tensor::from_f64(DType::F32, &random(total * s.heads), &[total, s.heads]).unwrap();
        f.cu_q = Some(offsets(q_lens));
        f
    }

    /// Query rows in all.
    pub fn total_q(&self) -> usize {
        match &self.cu_q {
            Some(cu) => *cu.last().unwrap() as usize,
            None => self.lens.len() * self.shape.q_len,
        }
    }

    /// Shape of q and o: `[b, q_len, h, d]`, or `[total_q, h, d]` when varlen.
    pub fn q_shape(&self) -> Vec<usize> {
        let s = self.shape;
        match self.cu_q {
            Some(_) => vec![self.total_q(), s.heads, s.dim],
            None => vec![self.lens.len(), s.q_len, s.heads, s.dim],
        }
    }

    /// Shape of lse: `[b, h, q_len]`, or `[h, total_q]` when varlen.
    pub fn lse_shape(&self) -> Vec<usize> {
        let s = self.shape;
        match self.cu_q {
            Some(_) => vec![s.heads, self.total_q()],
            None => vec![self.lens.len(), s.heads, s.q_len],
        }
    }

    /// The caches with one padding element after each row of `d`: rows of `d + 1` elements, so
    /// most rows do not start on a 16-byte boundary (the kernels' plain-load path).
    pub fn misalign_caches(&mut self) {
        let d = self.shape.dim;
        let pad = |t: &Tensor| {
            let v: Vec<f64> = t
                .to_f64()
                .chunks(d)
                .flat_map(|r| r.iter().copied().chain([0.0]))
                .collect();
            Tensor::from_f64(t.dtype(), &v, &[v.len()]).unwrap()
        };
        self.k_cache = pad(&self.k_cache);
        self.v_cache = pad(&self.v_cache);
        let [_, page, hkv, _] = self.cache_shape;
        self.cache_strides = [page * hkv * (d + 1), hkv * (d + 1), d + 1, 1];
    }

    fn cache_view<'a>(&self, t: &'a Tensor) -> TensorView<'a> {
        TensorView::new(t.view().data, &self.cache_shape, &self.cache_strides, 0).unwrap()
    }

    pub fn paged(&self) -> PagedAttentionInputs<'_> {
        let table = BlockTable::new(&self.table, self.lens.len(), self.max_pages).unwrap();
        let mut p = PagedAttentionInputs::new(
            self.q.view(),
            self.cache_view(&self.k_cache),
            self.cache_view(&self.v_cache),
            table,
            &self.lens,
        );
        p.sinks = Some(&self.sinks);
        p.gate = Some(self.gate.view());
        p.cu_seqlens_q = self.cu_q.as_deref();
        p
    }

    /// The decode kernels on `device` against the f64 reference: the worst error / tolerance
    /// (≤ 1 passes), or what differs.
    pub fn compare(
        &self,
        device: &Device,
        options: &AttentionOptions,
        call: &DecodeCall<'_>,
    ) -> std::result::Result<f64, String> {
        let executor = device.executor().expect("a device that runs kernels");
        let got =
            paged_decode(executor, &self.paged(), options, call).map_err(|e| e.to_string())?;
        let want = paged_attention(&self.paged(), options).map_err(|e| e.to_string())?;
        let dtype = self.shape.dtype;
        let o = got.o.to_f64();
        let mut worst = 0f64;
        for (r, (g, w)) in o
            .chunks(self.shape.dim)
            .zip(want.o.chunks(self.shape.dim))
            .enumerate()
        {
            let row_max = w.iter().fold(0f64, |m, x| m.max(x.abs()));
            for (c, (&g, &w)) in g.iter().zip(w).enumerate() {
                let tol = o_tolerance(dtype, w, row_max);
                let err = (g - w).abs();
                if err.is_nan() || err > tol {
                    return Err(format!(
                        "o[row {r}][{c}] = {g}, reference {w} (tol {tol:.1e})"
                    ));
                }
                worst = worst.max((g - w).abs() / tol);
            }
        }
        for (i, (g, &w)) in got.lse.to_f64().into_iter().zip(&want.lse).enumerate() {
            let ok = if w.is_finite() {
                (g - w).abs() <= lse_tolerance(dtype, w)
            } else {
                g == w
            };
            if !ok {
                return Err(format!("lse[{i}] = {g}, reference {w}"));
            }
            if w.is_finite() {
                worst = worst.max((g - w).abs() / lse_tolerance(dtype, w));
            }
        }
        Ok(worst)
    }
}

/// `[0, n₀, n₀ + n₁, …]` as i32.
pub fn offsets(lens: &[usize]) -> Vec<i32> {
    std::iter::once(0)
        .chain(lens.iter().scan(0, |at, &n| {
            *at += n as i32;
            Some(*at)
        }))
        .collect()
}

/// The same problem gathered into contiguous varlen tensors (what `paged_attention` builds):
/// q `[total_q, h, d]`, k/v `[Σ len, hkv, d]` rounded to the dtype, gate `[total_q, h]`.
pub struct Gathered {
    q: Tensor,
    k: Tensor,
    v: Tensor,
    gate: Tensor,
    cu_q: Vec<i32>,
    cu_k: Vec<i32>,
}

impl Gathered {
    pub fn new(f: &Fixture) -> Self {
        let s = f.shape;
        let lens: Vec<usize> = f.lens.iter().map(|&n| n as usize).collect();
        let b = lens.len();
        let total: usize = lens.iter().sum();
        let kv = |rows: &[Vec<f64>]| {
            Tensor::from_f64(s.dtype, &rows.concat(), &[total, s.kv_heads, s.dim]).unwrap()
        };
        let rows = f.total_q();
        let q = Tensor::from_f64(s.dtype, &f.q.to_f64(), &[rows, s.heads, s.dim]).unwrap();
        let gate = Tensor::from_f64(DType::F32, &f.gate.to_f64(), &[rows, s.heads]).unwrap();
        let cu_q = match &f.cu_q {
            Some(cu) => cu.clone(),
            None => offsets(&vec![s.q_len; b]),
        };
        Gathered {
            q,
            k: kv(&f.keys),
            v: kv(&f.values),
            gate,
            cu_q,
            cu_k: offsets(&lens),
        }
    }

    pub fn inputs<'a>(&'a self, f: &'a Fixture) -> AttentionInputs<'a> {
        AttentionInputs {
            q: self.q.view(),
            k: self.k.view(),
            v: self.v.view(),
            sinks: Some(&f.sinks),
            gate: Some(self.gate.view()),
            cu_seqlens_q: Some(&self.cu_q),
            cu_seqlens_k: Some(&self.cu_k),
        }
    }
}

impl Fixture {
    /// The decode kernels' statistics (`options.stats` is turned on) against the f64
    /// reference of the gathered problem under `quietattn::stats::compare`'s rules: counters
    /// and Q/K/V histograms exactly, sums within the stated bounds, row histograms and O within
    /// the reference's admissible bins. The outputs are compared too (`compare`).
    pub fn compare_stats(
        &self,
        device: &Device,
        options: &AttentionOptions,
        call: &DecodeCall<'_>,
    ) -> std::result::Result<f64, String> {
        // Auto takes the tensor-core chunk for f16/bf16 on the emulator: a caller that does not
        // pin a family gets the CUDA-core one
        let kernel = match options.kernel {
            KernelChoice::Auto => KernelChoice::CudaCore,
            pinned => pinned,
        };
        let options = AttentionOptions {
            stats: true,
            kernel,
            ..options.clone()
        };
        let worst = self.compare(device, &options, call)?;
        let executor = device.executor().expect("a device that runs kernels");
        let got =
            paged_decode(executor, &self.paged(), &options, call).map_err(|e| e.to_string())?;
        let got = got.stats.ok_or("statistics requested, none returned")?;
        let gathered = Gathered::new(self);
        let want = Expected::new(&gathered.inputs(self), &options).map_err(|e| e.to_string())?;
        let paged = paged_attention(&self.paged(), &options).map_err(|e| e.to_string())?;
        // the gathered problem is the paged reference's problem: same counters
        let rows = |h: &[quietattn::abi::QaHeadStats]| h.iter().map(|h| h.rows).collect::<Vec<_>>();
        if paged.stats.tensors[..3] != want.reference.stats.tensors[..3]
            || rows(&paged.stats.heads) != rows(&want.reference.stats.heads)
        {
            return Err("the gathered problem differs from the paged reference".into());
        }
        check_against_reference(&got, &want.reference.stats, &want.heads, &want.o)
            .map_err(|m| m.0)?;
        Ok(worst)
    }
}

/// The decode kernels' result, for tests that expect an error.
pub fn run(
    device: &Device,
    f: &Fixture,
    options: &AttentionOptions,
    call: &DecodeCall<'_>,
) -> Result<()> {
    let executor = device.executor().expect("a device that runs kernels");
    paged_decode(executor, &f.paged(), options, call).map(|_| ())
}

/// The option sets the decode tests cover, by `variant`: 0 causal, 1 window (20, 0) with
/// softcap 3, 2 causal with a head-wise sigmoid gate.
pub fn covering_options(
    norm: quietattn::Normaliser,
    variant: usize,
    stats: bool,
) -> AttentionOptions {
    AttentionOptions {
        normaliser: norm,
        causal: variant != 1,
        window: (variant == 1).then_some((20, 0)),
        softcap: (variant == 1).then_some(3.0),
        gate: if variant == 2 {
            quietattn::Gate::SigmoidHeadwise
        } else {
            quietattn::Gate::None
        },
        stats,
        ..AttentionOptions::default()
    }
}
