/*
 * quietattn ABI: every struct a kernel takes, defined once.
 *
 * Plain C with <stdint.h> types only. The Rust side (src/abi/generated.rs) is produced from this
 * file by bindgen; tests/abi_bindgen.rs regenerates it and fails on any difference, so the two
 * languages cannot drift. Device addresses are uint64_t (0 = absent), strides are int64_t in
 * elements, and every struct is laid out so that its 8-byte members are naturally aligned
 * (the kernels update them with 64-bit atomics).
 */
#ifndef QUIETATTN_ABI_H
#define QUIETATTN_ABI_H

#include <stdint.h>

/* ---- enumerations (plain integers in the structs so both languages agree on the width) ---- */

enum QaDtype { QA_DTYPE_F32 = 0, QA_DTYPE_F16 = 1, QA_DTYPE_BF16 = 2 };

/* docs/contract.md section 3. The kernels take the normaliser as a compile-time policy, one
 * instantiation per value. The host picks the kernel (module and symbol) from the value in
 * QaAttnParams::normaliser (src/ops/attention/family.rs, src/ops/decode/family.rs); no kernel
 * reads it, so a kernel launched with another normaliser's parameters does not notice. */
enum QaNormaliser {
  QA_NORM_SOFTMAX = 0,
  QA_NORM_OFF_BY_ONE = 1,
  QA_NORM_SINK = 2,
  QA_NORM_CLIPPED = 3,
  QA_NORM_SOFTPICK = 4,
  QA_NORM_SIGMOID = 5
};

/* docs/contract.md section 4. */
enum QaGate {
  QA_GATE_NONE = 0,
  QA_GATE_SIGMOID_HEADWISE = 1,
  QA_GATE_SIGMOID_ELEMENTWISE = 2,
  QA_GATE_CONTEXT_SCALE = 3
};

/* Which tensor a per-tensor / per-channel statistics block describes. */
enum QaStatTensor { QA_STAT_Q = 0, QA_STAT_K = 1, QA_STAT_V = 2, QA_STAT_O = 3, QA_STAT_TENSORS = 4 };

#define QA_ROW_HIST_BINS 16
#define QA_LOG2_BINS 40
#define QA_LOG2_BIN_OFFSET 24  /* bin = clamp(floor(log2|x|) + 24, 0, 39) */
#define QA_LOGIT_RANGE_BIN_WIDTH 2 /* logit-range histogram: bins of width 2 over [0, 32) */

/* ---- statistics (docs/contract.md section 5) ----
 * Float sums are accumulated in f32 inside a thread/warp/block and merged into the f64 globals
 * below with one atomic per block and counter; counts are exact 64-bit integers. */

/* Per query head. A row counts when it has at least one visible key. */
typedef struct QaHeadStats {
  uint64_t rows;
  double first_key_mass;    /* sum over rows of p(first key of the sequence) */
  double virtual_sink_mass; /* off_by_one and sink: sum over rows of e^(sink - lse) */
  uint64_t max_prob_hist[QA_ROW_HIST_BINS];    /* max_j p_ij, 16 bins over [0, 1] */
  uint64_t entropy_hist[QA_ROW_HIST_BINS];     /* H_i / ln(outcomes), 16 bins over [0, 1] */
  uint64_t logit_range_hist[QA_ROW_HIST_BINS]; /* max s - mean s, bins of width 2, last open */
} QaHeadStats;

/* Per channel c = head * head_dim + dim. Only finite elements enter these counters;
 * non-finite ones are counted in QaTensorStats.non_finite. absmax is non-negative, so the
 * kernels update it with an unsigned atomicMax on its bit pattern.
 * sum_3rd is kept beside the other power sums (docs/contract.md section 5): the central
 * fourth moment behind the kurtosis mu4/sigma^4 expands to
 * E[x^4] - 4 mean E[x^3] + 6 mean^2 E[x^2] - 3 mean^4, so without sum x^3 it is exact only for
 * channels with no skew. */
typedef struct QaChannelStats {
  float absmax;
  uint32_t reserved; /* keeps the 64-bit members aligned; always 0 */
  uint64_t count;
  double sum;     /* sum x   */
  double sum_sq;  /* sum x^2 */
  double sum_3rd; /* sum x^3 (needed by the central kurtosis, see above) */
  double sum_4th; /* sum x^4 */
} QaChannelStats;

/* Per tensor. */
typedef struct QaTensorStats {
  uint64_t log2_hist[QA_LOG2_BINS]; /* finite non-zero elements */
  uint64_t zeros;
  uint64_t non_finite;
} QaTensorStats;

/* Device addresses of the statistics of one attention launch (0 = not collected). */
typedef struct QaAttnStatsPtrs {
  uint64_t heads;                      /* QaHeadStats[heads] */
  uint64_t channels[QA_STAT_TENSORS];  /* QaChannelStats[heads or kv_heads * head_dim] */
  uint64_t tensors;                    /* QaTensorStats[QA_STAT_TENSORS] */
} QaAttnStatsPtrs;

/* ---- the standalone activation-statistics kernel ---- */

typedef struct QaActStatsParams {
  uint64_t x;             /* [tokens, channels], channel stride 1 */
  int64_t row_stride;     /* elements between consecutive tokens */
  uint32_t tokens;
  uint32_t channels;
  uint32_t dtype;         /* QaDtype */
  uint32_t tokens_per_block;
  uint64_t channel_stats; /* QaChannelStats[channels] */
  uint64_t tensor_stats;  /* QaTensorStats */
  uint64_t token_absmax;  /* float[tokens] (0 = not wanted); finite elements only */
} QaActStatsParams;

/* ---- attention ---- */

/* A [batch, seq, heads, dim] tensor (or [total, heads, dim] when varlen) with dim contiguous. */
typedef struct QaTensorDesc {
  uint64_t ptr;
  int64_t stride_batch; /* unused when varlen */
  int64_t stride_seq;
  int64_t stride_head;
  uint32_t dtype;       /* QaDtype */
  uint32_t reserved;
} QaTensorDesc;

typedef struct QaAttnParams {
  QaTensorDesc q; /* [b, sq, heads, d] */
  QaTensorDesc k; /* [b, sk, kv_heads, d] */
  QaTensorDesc v; /* [b, sk, kv_heads, d] */
  QaTensorDesc o; /* [b, sq, heads, d], dtype of q */
  QaTensorDesc gate; /* [b, sq, heads] (stride_head used, dim ignored) or [b, sq, heads, d]; f32/f16/bf16 */

  uint64_t lse;          /* float; [b, heads, sq] or [heads, total_q] when varlen */
  int64_t lse_stride_batch;
  int64_t lse_stride_head;

  uint64_t cu_seqlens_q; /* int32[batch + 1], or 0 for fixed lengths */
  uint64_t cu_seqlens_k; /* int32[batch + 1], or 0 */
  uint64_t sinks;        /* float[heads] for QA_NORM_SINK, else 0 */
  uint64_t errors;       /* QaErrorRecord the kernels record a bad cu_seqlens entry in; 0 = none */

  uint32_t batch;
  uint32_t heads;
  uint32_t kv_heads;
  uint32_t head_dim;
  uint32_t seqlen_q;     /* fixed length, or the maximum when varlen */
  uint32_t seqlen_k;
  uint32_t total_q;      /* varlen: rows of q, o, gate and lse (cu_seqlens_q stays within); else 0 */
  uint32_t total_k;      /* varlen: rows of k and v (cu_seqlens_k stays within); else 0 */

  uint32_t normaliser;   /* QaNormaliser */
  uint32_t gate_kind;    /* QaGate */
  uint32_t causal;       /* 0/1, bottom-right aligned */
  int32_t window_left;   /* -1 = unbounded */
  int32_t window_right;  /* -1 = unbounded */

  float scale;           /* applied to q.k */
  float softcap;         /* 0 = off, else s <- c * tanh(s / c) */
  float clip_gamma;      /* clipped softmax */
  float clip_zeta;
  float sigmoid_bias;    /* sigmoid attention: the caller's b, read when sigmoid_bias_default = 0 */
  uint32_t sigmoid_bias_default; /* 1: the kernel resolves b = -ln(kv_len of the sequence) itself
                                    (attention/output.cuh, norm_ctx); sigmoid_bias is ignored */
  uint32_t reserved;

  QaAttnStatsPtrs stats;
} QaAttnParams;

/* ---- the error record: device-side indices the host never saw ----
 * cu_seqlens of varlen prefill and decode, seq_lens_k and block-table entries of decode,
 * slot_mapping of append_kv. A kernel that meets a bad one never forms an address from it and
 * records the first such error of the launch here: the compare-and-swap on `code` (0 -> code)
 * decides which error is kept; kernels never clear the record. All zero: no error. */
enum QaErrorCode {
  QA_ERR_OK = 0,
  QA_ERR_BAD_SEQ_LEN = 1,      /* decode: seq_lens_k[seq] = value */
  QA_ERR_BAD_PAGE = 2,         /* decode: block_table[seq, column] = value */
  QA_ERR_BAD_SLOT = 3,         /* append_kv: slot_mapping[seq] = value */
  QA_ERR_BAD_CU_SEQLENS_Q = 4, /* cu_seqlens_q[column] = value, of sequence seq */
  QA_ERR_BAD_CU_SEQLENS_K = 5  /* cu_seqlens_k[column] = value, of sequence seq */
};

/* Which bound the value broke. */
enum QaErrorRule {
  QA_RULE_NONE = 0,
  QA_RULE_NEGATIVE = 1,   /* value < 0 */
  QA_RULE_DECREASING = 2, /* value < other, the sequence's first offset */
  QA_RULE_BEYOND = 3,     /* value past bound: the rows of the tensor an offset indexes (an offset
                             may equal them), the pages or slots of the cache (an index may not) */
  QA_RULE_OVER_MAX = 4    /* the sequence is longer than bound, the declared longest: offsets
                             value - other, seq_lens_k value (bound: also the keys the table maps) */
};

typedef struct QaErrorRecord {
  int32_t code;   /* QaErrorCode */
  int32_t seq;    /* sequence (append_kv: token) */
  int32_t column; /* the entry's index: cu_seqlens offset, block-table column; else -1 */
  int32_t value;  /* the offending value (a slot clamped to int32) */
  int32_t rule;   /* QaErrorRule */
  int32_t bound;  /* the bound of the rule, or -1 */
  int32_t other;  /* cu_seqlens: the sequence's first offset; else 0 */
  int32_t reserved;
} QaErrorRecord;

/* The record's name when only decode had one. */
typedef QaErrorRecord QaDecodeError;

/* ---- decode against a paged KV cache (docs/contract.md section 7, kernels/decode/) ---- */

/* One decode launch (chunk or combine kernel). `attn` describes q, o, gate, lse, sinks, options
 * and dims as for attention with batched queries [b, q_len, heads, d] (seqlen_q = q_len) or
 * varlen queries [total_q, heads, d] (cu_seqlens_q set, seqlen_q = the declared longest q_len,
 * attn.total_q = the rows, lse [heads, total_q]); attn.errors is the error record (the
 * workspace's first bytes); its k and v are the caches [num_pages, page_size, kv_heads, d] with
 * stride_batch = the page stride and stride_seq = the slot stride; seqlen_k is the
 * host-declared longest sequence (a bound the kernels check seq_lens_k against); cu_seqlens_k
 * is 0 (seq_lens_k holds the key lengths). */
typedef struct QaDecodeParams {
  QaAttnParams attn;
  uint64_t block_table; /* int32 [batch, max_pages], row stride table_stride */
  uint64_t seq_lens_k;  /* int32 [batch] */
  uint64_t partials;    /* float [splits, batch, heads, q_len, head_dim + 2] (varlen: [splits,
                           total_q, heads, ...]): acc, then m, l; with statistics head_dim + 8:
                           then A, B, n, sum(x - xmax), x0, xmax (decode/paged.cuh,
                           partial_slot; docs/contract.md section 7) */
  int64_t table_stride;
  uint32_t max_pages;
  uint32_t num_pages;
  uint32_t log2_page;
  uint32_t splits;      /* chunks per sequence; 1 = the chunk kernel writes o and lse */
  uint32_t chunk;       /* keys per chunk of the visible range */
  uint32_t pass;        /* clipped with splits > 1: 0 = lse pass, 1 = weights pass */
} QaDecodeParams;

/* append_kv (vLLM's reshape_and_cache): token t's [kv_heads, d] rows of k and v go to slot
 * slot_mapping[t] = page * page_size + offset of the caches; -1 skips the token. */
typedef struct QaAppendKvParams {
  uint64_t k;            /* [tokens, kv_heads, d], head dimension contiguous */
  uint64_t v;
  int64_t k_stride_token;
  int64_t k_stride_head;
  int64_t v_stride_token;
  int64_t v_stride_head;
  uint64_t k_cache;      /* [num_pages, page_size, kv_heads, d], contiguous */
  uint64_t v_cache;
  uint64_t slot_mapping; /* int64 [tokens] */
  uint64_t errors;       /* QaErrorRecord */
  uint32_t tokens;
  uint32_t kv_heads;
  uint32_t head_dim;
  uint32_t slots;        /* num_pages * page_size */
  uint32_t elem_bytes;   /* 2 or 4: the caches' dtype size */
  uint32_t reserved;
} QaAppendKvParams;

#endif /* QUIETATTN_ABI_H */
