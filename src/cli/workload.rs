//! The demo's synthetic workload: random heads plus "no-op" heads that want to output nothing,
//! with the mechanism each variant offers them planted explicitly.
//!
//! Token 0's value vector is ≈ 0 in every head, as in trained LLMs whose sink token carries
//! little value. The no-op heads are the first `noop_heads`; what their queries and keys hold
//! is the [`Plant`]. Everything else is seeded N(0, 1) and identical across plants.

use quietattn::{DType, Error, Result, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The sizes of the workload.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Sequences.
    pub batch: usize,
    /// Tokens per sequence (queries and keys).
    pub seq: usize,
    /// Query heads (= kv heads).
    pub heads: usize,
    /// How many of them (the first ones) are no-op heads.
    pub noop_heads: usize,
    /// Head dimension.
    pub dim: usize,
}

/// What the no-op heads' queries and keys hold. Targets are logits (after the 1/√d scale).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Plant {
    /// Channel 0: key 0 and every query hold `m = √(t·√d)`, so `s_i0 = t` while other logits
    /// stay ≈ 0: softmax parks its mass on token 0 (the attention sink).
    SinkKey(f64),
    /// Channel 1: every key holds `+m`, every query `-m`, so every logit is ≈ `-t`: the head
    /// pushes all of its logits down (keys sharing a large channel is what makes that possible).
    Quiet(f64),
    /// Queries ≈ 0 (noise 0.1): every logit ≈ 0.
    Zero,
}

/// The tensors of one workload, `[batch, seq, heads, dim]`.
pub struct Workload {
    /// Queries.
    pub q: Tensor,
    /// Keys.
    pub k: Tensor,
    /// Values.
    pub v: Tensor,
    /// Sink logits: 8 for no-op heads, 0 for the others.
    pub sinks: Vec<f32>,
    /// Headwise gate logits `[batch, seq, heads]`: -8 for no-op heads, +4 for the others.
    pub gate: Tensor,
}

/// A standard normal sample (Box–Muller; `rand` alone has no normal distribution).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Builds the workload; the same `seed` gives the same random part for every plant.
pub fn build(shape: &Shape, plant: Plant, seed: u64, dtype: DType) -> Result<Workload> {
    let Shape {
        batch,
        seq,
        heads,
        noop_heads,
        dim,
    } = *shape;
    if noop_heads > heads || seq < 2 || dim < 2 || batch == 0 || heads == 0 {
        return Err(Error::InvalidOption(format!(
            "demo shape: need batch >= 1, seq >= 2, dim >= 2 and no-op heads ({noop_heads}) <= \
             heads ({heads})"
        )));
    }
    let n = batch * seq * heads * dim;
    let at = |b: usize, i: usize, h: usize, c: usize| ((b * seq + i) * heads + h) * dim + c;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut q: Vec<f64> = (0..n).map(|_| normal(&mut rng)).collect();
    let mut k: Vec<f64> = (0..n).map(|_| normal(&mut rng)).collect();
    let mut v: Vec<f64> = (0..n).map(|_| normal(&mut rng)).collect();
    let noise: Vec<f64> = (0..n).map(|_| normal(&mut rng)).collect();

    let scale = 1.0 / (dim as f64).sqrt();
    for b in 0..batch {
        for i in 0..seq {
            for h in 0..heads {
                for c in 0..dim {
                    let x = at(b, i, h, c);
                    if i == 0 {
                        v[x] *= 0.01;
                    }
                    if h >= noop_heads {
                        continue;
                    }
                    q[x] = 0.1 * noise[x];
                    match plant {
                        Plant::SinkKey(t) if c == 0 => {
                            let m = (t / scale).sqrt();
                            q[x] = m;
                            k[x] = if i == 0 { m } else { 0.1 * k[x] };
                        }
                        Plant::Quiet(t) if c == 1 => {
                            let m = (t / scale).sqrt();
                            q[x] = -m;
                            k[x] = m + 0.05 * k[x];
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    let dims = [batch, seq, heads, dim];
    let noop = |h: usize| h < noop_heads;
    let gate: Vec<f64> = (0..batch * seq * heads)
        .map(|x| if noop(x % heads) { -8.0 } else { 4.0 })
        .collect();
    Ok(Workload {
        q: Tensor::from_f64(dtype, &q, &dims)?,
        k: Tensor::from_f64(dtype, &k, &dims)?,
        v: Tensor::from_f64(dtype, &v, &dims)?,
        sinks: (0..heads)
            .map(|h| if noop(h) { 8.0 } else { 0.0 })
            .collect(),
        gate: Tensor::from_f64(dtype, &gate, &[batch, seq, heads])?,
    })
}

/// Mean L2 norm of the output rows `o[b, i, h, :]` over the heads `h` that `pick` selects.
pub fn mean_row_norm(o: &[f64], shape: &Shape, pick: impl Fn(usize) -> bool) -> Option<f64> {
    let (mut total, mut rows) = (0.0, 0usize);
    for (r, row) in o.chunks_exact(shape.dim).enumerate() {
        if pick(r % shape.heads) {
            total += row.iter().map(|x| x * x).sum::<f64>().sqrt();
            rows += 1;
        }
    }
    (rows > 0).then(|| total / rows as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: Shape = Shape {
        batch: 1,
        seq: 8,
        heads: 2,
        noop_heads: 1,
        dim: 16,
    };

    fn logit(w: &Workload, h: usize, i: usize, j: usize) -> f64 {
        let (q, k) = (w.q.to_f64(), w.k.to_f64());
        let at = |t: usize, c: usize| (t * SHAPE.heads + h) * SHAPE.dim + c;
        (0..SHAPE.dim)
            .map(|c| q[at(i, c)] * k[at(j, c)])
            .sum::<f64>()
            / 4.0
    }

    #[test]
    fn plants_reach_their_logits() {
        let w = build(&SHAPE, Plant::SinkKey(8.0), 1, DType::F32).unwrap();
        for i in 0..SHAPE.seq {
            assert!((logit(&w, 0, i, 0) - 8.0).abs() < 0.5, "row {i}");
            for j in 1..SHAPE.seq {
                assert!(logit(&w, 0, i, j).abs() < 1.0);
            }
        }
        let w = build(&SHAPE, Plant::Quiet(4.0), 1, DType::F32).unwrap();
        for j in 0..SHAPE.seq {
            assert!((logit(&w, 0, 3, j) + 4.0).abs() < 0.5, "key {j}");
        }
        // Token 0's values are ≈ 0 in every head; the other tokens' are not.
        let v = w.v.to_f64();
        assert!(v[..SHAPE.heads * SHAPE.dim].iter().all(|x| x.abs() < 0.1));
        assert!(v[SHAPE.heads * SHAPE.dim..].iter().any(|x| x.abs() > 0.5));
    }

    #[test]
    fn same_seed_same_active_heads() {
        let a = build(&SHAPE, Plant::Zero, 9, DType::F32).unwrap();
        let b = build(&SHAPE, Plant::SinkKey(8.0), 9, DType::F32).unwrap();
        let active = |t: &Tensor| -> Vec<f64> {
            t.to_f64()
                .chunks_exact(SHAPE.dim)
                .enumerate()
                .filter(|(r, _)| r % SHAPE.heads == 1)
                .flat_map(|(_, c)| c.to_vec())
                .collect()
        };
        assert_eq!(active(&a.q), active(&b.q));
        assert_eq!(active(&a.k), active(&b.k));
        assert_eq!(a.v, b.v);
        assert_eq!(a.sinks, vec![8.0, 0.0]);
    }

    #[test]
    fn row_norms() {
        let shape = Shape { dim: 2, ..SHAPE };
        // rows: (b0,i0,h0) (b0,i0,h1) (b0,i1,h0) (b0,i1,h1)
        let o = [3.0, 4.0, 1.0, 0.0, 0.0, 0.0, 0.0, 2.0];
        assert_eq!(mean_row_norm(&o, &shape, |h| h == 0), Some(2.5));
        assert_eq!(mean_row_norm(&o, &shape, |h| h == 1), Some(1.5));
        assert_eq!(mean_row_norm(&o, &shape, |_| false), None);
    }
}
