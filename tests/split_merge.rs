//! docs/contract.md §7's split-KV merge in f64: for every normaliser, a row split anywhere (into
//! two chunks at every position, into k chunks with empty ones, in any chunk order) merges to the
//! unsplit reference — output, `lse` and every row statistic within 1e-12 — plus closed-form hand
//! cases.

use quietattn::Normaliser;
use quietattn::abi::QaHeadStats;
use quietattn::reference::row_stats::{self, normalised_entropy};
use quietattn::reference::split::{Chunk, ExpPartial, MergedRow, RowStats, split_row};
use quietattn::reference::{RowParams, row_weights};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const DIM: usize = 4;
const TOL: f64 = 1e-12;

/// One row: visible key positions, logits, values `[n, DIM]`, and its parameters.
struct Row {
    keys: Vec<usize>,
    logits: Vec<f64>,
    values: Vec<f64>,
    params: RowParams,
}

impl Row {
    fn random(rng: &mut StdRng) -> Row {
        let n = rng.random_range(1..=24);
        // Some rows do not see key 0 (a window): their first-key weight must stay 0.
        let start = if rng.random_bool(0.3) { 3 } else { 0 };
        let spread = [0.5, 4.0, 30.0][rng.random_range(0..3)];
        let logits = (0..n)
            .map(|_| match rng.random_range(0..10) {
                0 => 0.0, // softpick's e^s − 1 = 0 exactly
                _ => spread * rng.random_range(-1.0..1.0),
            })
            .collect();
        Row {
            keys: (start..start + n).collect(),
            logits,
            values: (0..n * DIM).map(|_| rng.random_range(-2.0..2.0)).collect(),
            params: RowParams {
                sink: rng.random_range(-3.0..3.0),
                bias: rng.random_range(-3.0..1.0),
            },
        }
    }

    fn chunk(&self, from: usize, to: usize) -> Chunk<'_> {
        Chunk::new(
            &self.keys[from..to],
            &self.logits[from..to],
            &self.values[from * DIM..to * DIM],
            DIM,
        )
        .expect("consistent slices")
    }

    /// The chunks between consecutive cut positions (repeated cuts give empty chunks).
    fn chunks(&self, cuts: &[usize]) -> Vec<Chunk<'_>> {
        let mut bounds = vec![0];
        bounds.extend_from_slice(cuts);
        bounds.push(self.keys.len());
        bounds.windows(2).map(|w| self.chunk(w[0], w[1])).collect()
    }

    /// The unsplit row straight from the reference's closed forms (`row_weights`, `row_stats`).
    fn reference(&self, norm: &Normaliser) -> (Vec<f64>, f64, RowStats) {
        let r = row_weights(norm, &self.logits, self.params);
        let mut o = vec![0.0; DIM];
        for (j, w) in r.weights.iter().enumerate() {
            for (c, acc) in o.iter_mut().enumerate() {
                *acc += w * self.values[j * DIM + c];
            }
        }
        let sink = norm
            .has_virtual_sink()
            .then(|| (self.params.sink - r.lse).exp());
        let n = self.logits.len() as f64;
        let max_s = self
            .logits
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let stats = RowStats {
            keys: self.logits.len(),
            first_key_weight: if self.keys[0] == 0 { r.weights[0] } else { 0.0 },
            max_weight: r.weights.iter().copied().fold(0.0, f64::max),
            entropy: normalised_entropy(norm, &r.weights, sink),
            logit_range: max_s - self.logits.iter().sum::<f64>() / n,
            virtual_sink: sink,
        };
        (o, r.lse, stats)
    }

    /// Adds the unsplit row to a head through the reference's own statistics code.
    fn add_reference(&self, norm: &Normaliser, head: &mut QaHeadStats) {
        let r = row_weights(norm, &self.logits, self.params);
        let row = row_stats::Row {
            keys: &self.keys,
            logits: &self.logits,
            weights: &r.weights,
            lse: r.lse,
            sink: self.params.sink,
        };
        row_stats::add_row(head, norm, &row);
    }
}

fn near(what: &str, got: f64, want: f64) -> Result<(), String> {
    let ok = got == want || (got - want).abs() <= TOL * (1.0 + want.abs());
    ok.then_some(())
        .ok_or_else(|| format!("{what}: merged {got:e}, unsplit {want:e}"))
}

fn check(norm: &Normaliser, row: &Row, got: &MergedRow) -> Result<(), String> {
    let (o, lse, want) = row.reference(norm);
    for (c, (&g, &w)) in got.o.iter().zip(&o).enumerate() {
        near(&format!("o[{c}]"), g, w)?;
    }
    near("lse", got.lse, lse)?;
    let s = got.stats.ok_or("a row with keys lost its statistics")?;
    if s.keys != want.keys {
        return Err(format!("keys {} vs {}", s.keys, want.keys));
    }
    near(
        "first-key weight",
        s.first_key_weight,
        want.first_key_weight,
    )?;
    near("max weight", s.max_weight, want.max_weight)?;
    near("entropy", s.entropy, want.entropy)?;
    near("logit range", s.logit_range, want.logit_range)?;
    match (s.virtual_sink, want.virtual_sink) {
        (Some(g), Some(w)) => near("virtual sink", g, w),
        (None, None) => Ok(()),
        other => Err(format!("virtual sink presence differs: {other:?}")),
    }
}

fn rows(seed: u64, count: usize) -> Vec<Row> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count).map(|_| Row::random(&mut rng)).collect()
}

#[test]
fn two_chunks_split_at_every_position_merge_to_the_unsplit_row() {
    let mut checked = 0;
    for norm in Normaliser::all_defaults() {
        for (r, row) in rows(11, 40).iter().enumerate() {
            for cut in 0..=row.keys.len() {
                let merged = split_row(&norm, row.params, &row.chunks(&[cut]), DIM);
                check(&norm, row, &merged)
                    .unwrap_or_else(|e| panic!("{} row {r} cut {cut}: {e}", norm.name()));
                checked += 1;
            }
        }
    }
    assert!(checked > 6 * 40 * 2);
}

#[test]
fn k_chunks_with_empty_ones_in_any_order_merge_to_the_unsplit_row() {
    let mut rng = StdRng::seed_from_u64(23);
    for norm in Normaliser::all_defaults() {
        for (r, row) in rows(29, 60).iter().enumerate() {
            let n = row.keys.len();
            let k = rng.random_range(1..=8);
            let mut cuts: Vec<usize> = (0..k).map(|_| rng.random_range(0..=n)).collect();
            cuts.sort_unstable();
            let mut chunks = row.chunks(&cuts);
            // The combine kernel sees partials in whatever order the blocks finished.
            chunks.shuffle(&mut rng);
            let merged = split_row(&norm, row.params, &chunks, DIM);
            check(&norm, row, &merged)
                .unwrap_or_else(|e| panic!("{} row {r} cuts {cuts:?}: {e}", norm.name()));
        }
    }
}

#[test]
fn merged_rows_fill_head_counters_like_the_unsplit_kernel() {
    for norm in Normaliser::all_defaults() {
        let (mut split, mut whole) = (QaHeadStats::default(), QaHeadStats::default());
        for row in rows(31, 50) {
            let cut = row.keys.len() / 3;
            let merged = split_row(&norm, row.params, &row.chunks(&[cut, cut, 2 * cut]), DIM);
            merged.stats.expect("keys").add_to(&mut split);
            row.add_reference(&norm, &mut whole);
        }
        let name = norm.name();
        assert_eq!(split.rows, 50, "{name}");
        assert_eq!(split.rows, whole.rows, "{name}");
        assert_eq!(split.max_prob_hist, whole.max_prob_hist, "{name}");
        assert_eq!(split.entropy_hist, whole.entropy_hist, "{name}");
        assert_eq!(split.logit_range_hist, whole.logit_range_hist, "{name}");
        near("first_key_mass", split.first_key_mass, whole.first_key_mass).unwrap();
        near(
            "virtual_sink_mass",
            split.virtual_sink_mass,
            whole.virtual_sink_mass,
        )
        .unwrap();
    }
}

#[test]
fn exp_merge_is_associative_for_a_tree_of_combines() {
    for row in rows(37, 20) {
        let n = row.keys.len();
        let parts: Vec<ExpPartial> = row
            .chunks(&[n / 4, n / 2, 3 * n / 4])
            .iter()
            .map(ExpPartial::of)
            .collect();
        let flat = ExpPartial::merge(&parts, DIM);
        let left = ExpPartial::merge(&parts[..2], DIM);
        let right = ExpPartial::merge(&parts[2..], DIM);
        let tree = ExpPartial::merge(&[right, left], DIM);
        near("lse", tree.lse(), flat.lse()).unwrap();
        near("t/l", tree.t / tree.l, flat.t / flat.l).unwrap();
        for (a, b) in tree.acc.iter().zip(&flat.acc) {
            near("acc/l", a / tree.l, b / flat.l).unwrap();
        }
    }
}

/// Two chunks of one key each, values e₀ and e₁ (dim 2): the output is the weight pair.
fn one_key_chunks(norm: Normaliser, logits: [f64; 2], params: RowParams) -> MergedRow {
    let values = [1.0, 0.0, 0.0, 1.0];
    let a = Chunk::new(&[0], &logits[..1], &values[..2], 2).unwrap();
    let b = Chunk::new(&[1], &logits[1..], &values[2..], 2).unwrap();
    split_row(&norm, params, &[a, b], 2)
}

fn assert_close(got: f64, want: f64) {
    assert!((got - want).abs() <= 1e-15, "{got} vs {want}");
}

#[test]
fn hand_cases_with_one_key_per_chunk() {
    let none = RowParams {
        sink: 0.0,
        bias: 0.0,
    };
    // softmax: weights e / (e + e^-2) and e^-2 / (e + e^-2).
    let r = one_key_chunks(Normaliser::Softmax, [1.0, -2.0], none);
    let p0 = 1.0 / (1.0 + (-3.0f64).exp());
    assert_close(r.o[0], p0);
    assert_close(r.o[1], 1.0 - p0);
    assert_close(r.lse, (1f64.exp() + (-2f64).exp()).ln());

    // sink σ = ln 2 with two keys of logit 0: denominator 4, the sink counted once (not 2 + 2).
    let sink = RowParams {
        sink: 2f64.ln(),
        bias: 0.0,
    };
    let r = one_key_chunks(Normaliser::Sink, [0.0, 0.0], sink);
    assert_close(r.o[0], 0.25);
    assert_close(r.o[1], 0.25);
    assert_close(r.lse, 4f64.ln());
    let s = r.stats.unwrap();
    assert_close(s.virtual_sink.unwrap(), 0.5);
    assert_close(s.first_key_weight, 0.25);

    // sigmoid with b = −ln 2 and logits ln 2: σ(0) = 1/2 each, absolute, no normalisation.
    let bias = RowParams {
        sink: 0.0,
        bias: -(2f64.ln()),
    };
    let r = one_key_chunks(Normaliser::Sigmoid { bias: None }, [2f64.ln(); 2], bias);
    assert_close(r.o[0], 0.5);
    assert_close(r.o[1], 0.5);
    assert_eq!(r.lse, 0.0);

    // softpick: e^s − 1 = 3 and −1/2; the negative key only enters the |·| denominator.
    let r = one_key_chunks(Normaliser::Softpick, [4f64.ln(), 0.5f64.ln()], none);
    assert_close(r.o[0], 3.0 / (3.5 + 1e-6));
    assert_eq!(r.o[1], 0.0);
    assert_close(r.lse, 3.5f64.ln());

    // clipped γ = −0.1, ζ = 1 over softmax (0.1, 0.9): 1.1·p − 0.1 = 0.01 and 0.89.
    let clipped = Normaliser::Clipped {
        gamma: -0.1,
        zeta: 1.0,
    };
    let r = one_key_chunks(clipped, [0.0, 9f64.ln()], none);
    // γ = −0.1 as f32 is not exactly −0.1: compare with its exact value.
    let (g, z) = (f64::from(-0.1f32), 1.0);
    assert_close(r.o[0], (z - g) * 0.1 + g);
    assert_close(r.o[1], (z - g) * 0.9 + g);
    assert_close(r.lse, 10f64.ln());
}

#[test]
fn the_first_key_mass_comes_from_whichever_chunk_holds_key_0() {
    let values = [5.0, 7.0, 9.0];
    let logits = [2.0, 0.5, -1.0];
    let whole = Chunk::new(&[0, 1, 2], &logits, &values, 1).unwrap();
    let late = Chunk::new(&[1, 2], &logits[1..], &values[1..], 1).unwrap();
    let first = Chunk::new(&[0], &logits[..1], &values[..1], 1).unwrap();
    let p = RowParams {
        sink: 0.0,
        bias: 0.0,
    };
    for norm in Normaliser::all_defaults() {
        let want = split_row(&norm, p, &[whole], 1).stats.unwrap();
        // The chunk with key 0 arrives last.
        let got = split_row(&norm, p, &[late, first], 1).stats.unwrap();
        assert!(want.first_key_weight > 0.0, "{}", norm.name());
        near("first", got.first_key_weight, want.first_key_weight).unwrap();
    }
}

#[test]
fn a_row_of_empty_chunks_is_the_masked_row() {
    let empty = Chunk::new(&[], &[], &[], 3).unwrap();
    // (normaliser, its sink logit as the driver sets it, the masked lse of docs/contract.md §1)
    for (norm, sink, lse) in [
        (Normaliser::Softmax, 0.0, f64::NEG_INFINITY),
        (Normaliser::OffByOne, 0.0, 0.0), // the sink term is the whole denominator
        (Normaliser::Sink, -1.5, -1.5),
        (Normaliser::Softpick, 0.0, f64::NEG_INFINITY),
        (Normaliser::Sigmoid { bias: None }, 0.0, 0.0),
    ] {
        let p = RowParams { sink, bias: 0.0 };
        let r = split_row(&norm, p, &[empty, empty], 3);
        assert_eq!(r.o, vec![0.0; 3], "{}", norm.name());
        assert_eq!(r.lse, lse, "{}", norm.name());
        assert!(r.stats.is_none());
    }
}
