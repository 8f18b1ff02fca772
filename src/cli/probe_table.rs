//! The terminal tables of `quietattn probe`.

use quietattn::probe::ProbeReport;
use quietattn::probe::replay::Movement;
use quietattn::stats::report::SINK_EPSILON;

use super::table::{Table, num};

/// Per layer: attention summary and the output hidden state's statistics.
pub fn print_layers(r: &ProbeReport, causal: bool) {
    let mut t = Table::new(
        &[
            "layer",
            "sink",
            "sink rate",
            "sink rate r>0",
            "entropy",
            "tensor kurt",
            "max ch kurt (ch)",
            "inf-norm",
            "int8",
            "6σ",
            "massive",
            "massive activations (token, ch, value)",
        ],
        1,
    );
    let e = &r.embeddings;
    t.row(vec![
        "emb".into(),
        "".into(),
        "".into(),
        "".into(),
        "".into(),
        num(e.tensor_kurtosis),
        kurt_cell(e.max_channel_kurtosis),
        num(Some(e.inf_norm)),
        e.outliers.llm_int8.len().to_string(),
        e.outliers.six_sigma.len().to_string(),
        e.outliers.massive.len().to_string(),
        massive_cell(&e.massive),
    ]);
    for l in &r.layers {
        let h = &l.hidden;
        t.row(vec![
            l.layer.to_string(),
            num(l.mean_sink_score),
            num(l.sink_rate),
            if causal {
                num(l.sink_rate_without_row0)
            } else {
                "".into()
            },
            num(l.mean_entropy),
            num(h.tensor_kurtosis),
            kurt_cell(h.max_channel_kurtosis),
            num(Some(h.inf_norm)),
            h.outliers.llm_int8.len().to_string(),
            h.outliers.six_sigma.len().to_string(),
            h.outliers.massive.len().to_string(),
            massive_cell(&h.massive),
        ]);
    }
    outln!("{}", t.render());
    outln!(
        "sink = mean weight on token 0 (mean over heads); sink rate = share of heads > {SINK_EPSILON}; \
         entropy = mean normalised entropy; kurtosis is Pearson (Gaussian 3): tensor = all values \
         of the layer output, ch = per channel over tokens; int8 / 6σ / massive = outlier channels by \
         |x| ≥ 6, |x| > 6σ, |x| ≥ 100 and ≥ 1000× median |x|."
    );
}

fn kurt_cell(k: Option<(usize, f64)>) -> String {
    k.map_or("-".into(), |(c, v)| format!("{} ({c})", num(Some(v))))
}

fn massive_cell(m: &[quietattn::probe::hidden::MassiveActivation]) -> String {
    let shown: Vec<String> = m
        .iter()
        .take(3)
        .map(|a| {
            format!(
                "({}, {}, {})",
                a.token,
                a.channel,
                num(Some(f64::from(a.value)))
            )
        })
        .collect();
    match m.len() {
        0 => "-".into(),
        n if n > 3 => format!("{} +{}", shown.join(" "), n - 3),
        _ => shown.join(" "),
    }
}

/// Per layer × head: sink score and value-norm ratio.
pub fn print_heads(r: &ProbeReport) {
    let heads = r.layers.first().map_or(0, |l| l.heads.len());
    let mut header: Vec<String> = vec!["layer".into()];
    header.extend((0..heads).map(|h| format!("h{h}")));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    for (title, pick) in [
        ("sink score (weight on token 0) per head", 0),
        ("value-norm ratio ‖v0‖ / mean ‖vj‖ per head", 1),
    ] {
        outln!("{title}:");
        let mut t = Table::new(&header, 1);
        for l in &r.layers {
            let mut row = vec![l.layer.to_string()];
            row.extend(l.heads.iter().map(|h| {
                let v = if pick == 0 {
                    h.sink_score
                } else {
                    h.value_norm_ratio
                };
                v.map_or("-".into(), |x| format!("{x:.2}"))
            }));
            t.row(row);
        }
        outln!("{}", t.render());
    }
}

/// The replay's summary, labelled as one.
pub fn print_replay(name: &str, m: &Movement, r: &ProbeReport) {
    outln!(
        "REPLAY under {name} (the checkpoint was trained with softmax: same weights, another \
         normaliser, not a model trained with it)"
    );
    if let Some(kl) = m.next_token_kl {
        outln!(
            "  next-token KL(softmax ‖ {name}) at the last position: {} nats; same top token: {}",
            num(Some(kl)),
            m.same_top_token.map_or("-".into(), |s| s.to_string())
        );
    }
    if let (Some(rc), Some(cos)) = (m.relative_change, m.mean_cosine) {
        outln!(
            "  output movement: ‖Δh‖/‖h‖ of the last hidden state {}, mean token cosine {}",
            num(Some(rc)),
            num(Some(cos))
        );
    }
    let mut t = Table::new(
        &[
            "layer",
            "sink",
            "sink rate",
            "entropy",
            "tensor kurt",
            "inf-norm",
        ],
        1,
    );
    for l in &r.layers {
        t.row(vec![
            l.layer.to_string(),
            num(l.mean_sink_score),
            num(l.sink_rate),
            num(l.mean_entropy),
            num(l.hidden.tensor_kurtosis),
            num(Some(l.hidden.inf_norm)),
        ]);
    }
    outln!("{}", t.render());
}
