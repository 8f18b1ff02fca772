//! Statistics buffers are sums: what two launches into one buffer must read as.

use quietattn::OutlierStats;

/// Integer counters add exactly; f64 sums up to rounding; absmax is the larger one.
pub fn assert_sum(got: &OutlierStats, a: &OutlierStats, b: &OutlierStats) {
    let close = |g: f64, x: f64, y: f64, what: &str| {
        assert!(
            (g - (x + y)).abs() <= 1e-9 * (x.abs() + y.abs()) + 1e-12,
            "{what}: {g} != {x} + {y}"
        );
    };
    for ((g, x), y) in got.heads.iter().zip(&a.heads).zip(&b.heads) {
        assert_eq!(g.rows, x.rows + y.rows);
        close(
            g.first_key_mass,
            x.first_key_mass,
            y.first_key_mass,
            "first_key_mass",
        );
        close(
            g.virtual_sink_mass,
            x.virtual_sink_mass,
            y.virtual_sink_mass,
            "sink mass",
        );
        for (hg, (hx, hy)) in [
            (&g.max_prob_hist, (&x.max_prob_hist, &y.max_prob_hist)),
            (&g.entropy_hist, (&x.entropy_hist, &y.entropy_hist)),
            (
                &g.logit_range_hist,
                (&x.logit_range_hist, &y.logit_range_hist),
            ),
        ] {
            let sum: Vec<u64> = hx.iter().zip(hy).map(|(p, q)| p + q).collect();
            assert_eq!(hg.to_vec(), sum);
        }
    }
    for t in 0..4 {
        for ((g, x), y) in got.channels[t]
            .iter()
            .zip(&a.channels[t])
            .zip(&b.channels[t])
        {
            assert_eq!(g.count, x.count + y.count);
            assert_eq!(g.absmax, x.absmax.max(y.absmax));
            close(g.sum, x.sum, y.sum, "channel sum");
            close(g.sum_sq, x.sum_sq, y.sum_sq, "channel sum_sq");
            close(g.sum_3rd, x.sum_3rd, y.sum_3rd, "channel sum_3rd");
            close(g.sum_4th, x.sum_4th, y.sum_4th, "channel sum_4th");
        }
        let (g, x, y) = (&got.tensors[t], &a.tensors[t], &b.tensors[t]);
        assert_eq!(g.zeros, x.zeros + y.zeros);
        assert_eq!(g.non_finite, x.non_finite + y.non_finite);
        let sum: Vec<u64> = x
            .log2_hist
            .iter()
            .zip(&y.log2_hist)
            .map(|(p, q)| p + q)
            .collect();
        assert_eq!(g.log2_hist.to_vec(), sum);
    }
    assert!(
        a.heads.iter().any(|h| h.rows > 0),
        "the launches counted no rows"
    );
}
