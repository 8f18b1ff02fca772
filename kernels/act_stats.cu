// Standalone activation statistics of a [tokens, channels] tensor (docs/contract.md §5, last
// paragraph).
// quietattn-arch: compute_75
//
// Block = one warp wide (32 lanes along channels) x ACT_WARPS warps (along tokens). Lane x of
// every warp owns the VEC consecutive channels c0 = (blockIdx.x * 32 + x) * VEC .. c0 + VEC - 1,
// VEC = 16 bytes / element size, so one warp reads 512 contiguous bytes of one row with 16-byte
// loads. Warp y reads rows row0 + y, row0 + y + ACT_WARPS, ... of the block's token chunk
// [row0, row0 + tokens_per_block).
//
// Every counter is privatised and merged once per block: per-channel partial sums live in
// registers (f32), are summed over the block's warps in shared memory, then each block issues ONE
// global atomic per channel and counter (f64 add / u64 add / u32 max on the absmax bits). The log2
// histogram is privatised in shared memory with one column per lane (bank = lane, so a warp never
// conflicts with itself), with two more rows for zeros and non-finite values, and each row is
// flushed with one global atomic per block. Every element costs one shared atomic. A lane's
// 16-byte group of one row is "plain" when whole and every element is finite, non-zero and
// normal with |x| >= 2^-24 (nearly every activation): then the bin is the exponent minus a
// constant and no element is classified or counted one by one (LaneSums::add_row). Other groups
// go element by element without branches: a non-finite element enters the moments as 0, which
// changes no sum and no maximum of magnitudes, and its histogram row says what it was. Per-token
// absmax is a warp max-reduction (the warp covers all of the block's channels of that row) and one
// global atomicMax per token and block.

// f32 partial sums bound what one block can represent: |x|^4 overflows f32 above ~1.8e19, and a
// block sums at most tokens_per_block terms per channel (relative rounding ~ tokens_per_block *
// 2^-24 before the f64 merge).
#include "attention/unroll.cuh"
#include "qa/types.cuh"

namespace {

constexpr int ACT_WARPS = 8;  // blockDim.y; the host launches blocks of [32, ACT_WARPS, 1]
constexpr int ACT_LANES = 32; // blockDim.x
constexpr int ACT_BINS = QA_LOG2_BINS;
constexpr int ZERO_ROW = ACT_BINS;          // histogram row counting zeros
constexpr int NON_FINITE_ROW = ACT_BINS + 1; // histogram row counting NaN and infinities
constexpr int HIST_ROWS = ACT_BINS + 2;
constexpr int ACT_UNROLL = 4; // rows in flight per warp (independent 16-byte loads)
constexpr uint32_t EXP_MASK = 0x7f800000u;

// VEC elements of type T, 16 bytes, so a whole group moves with one vector load.
template <class T>
struct alignas(16) Group {
  static constexpr int VEC = 16 / int(sizeof(T));
  T v[VEC];
};

// The log2-histogram bin of a finite non-zero f32 with bit pattern `bits` (sign ignored):
// floor(log2|x|) is the unbiased exponent e - 127 for a normal number. Subnormals (e == 0) have
// floor(log2|x|) <= -127, below the first bin's -24, so they clamp to bin 0 like every |x| < 2^-23.
// f16/bf16 inputs are converted to f32 exactly first, so this covers all three dtypes.
__device__ __forceinline__ int log2_bin(uint32_t bits) {
  int e = int((bits & EXP_MASK) >> 23) - 127 + QA_LOG2_BIN_OFFSET;
  return e < 0 ? 0 : (e > ACT_BINS - 1 ? ACT_BINS - 1 : e);
}

// The histogram row of an element with magnitude bits `bits` (sign cleared).
__device__ __forceinline__ int hist_row(uint32_t bits) {
  const int bin = log2_bin(bits);  // computed unconditionally: selects, no branch
  const int row = bits == 0 ? ZERO_ROW : bin;
  return (bits & EXP_MASK) == EXP_MASK ? NON_FINITE_ROW : row;
}

// One lane's counters of its VEC channels, over the finite elements of its rows:
// amax = max |x|, s1 = sum x, s2 = sum x^2, s3 = sum x^3, s4 = sum x^4, count().
template <int VEC>
struct LaneSums {
  float amax[VEC], s1[VEC], s2[VEC], s3[VEC], s4[VEC];
  uint32_t n[VEC];     // finite elements of rows counted by add()
  uint32_t plain = 0;  // plain rows: each adds one finite element to every channel

  __device__ __forceinline__ LaneSums() {
QA_UNROLL
    for (int j = 0; j < VEC; ++j) {
      amax[j] = s1[j] = s2[j] = s3[j] = s4[j] = 0.f;
      n[j] = 0;
    }
  }

  // Counts element v of channel j into the sums and `hist_col` (this lane's histogram column);
  // returns row_max raised to |v| when v is finite.
  __device__ __forceinline__ float add(int j, float v, uint32_t* hist_col, float row_max) {
    const uint32_t bits = __float_as_uint(v) & 0x7fffffffu;
    const bool finite = (bits & EXP_MASK) != EXP_MASK;
    const float x = finite ? v : 0.f;  // adds 0 to every sum and maximum (all start at 0)
    const float a = fabsf(x), x2 = x * x;
    amax[j] = fmaxf(amax[j], a);
    s1[j] += x;
    s2[j] += x2;
    s3[j] += x2 * x;
    s4[j] += x2 * x2;
    n[j] += finite ? 1u : 0u;
    atomicAdd(&hist_col[hist_row(bits) * ACT_LANES], 1u);
    return fmaxf(row_max, a);
  }

  // Row `g` of this lane; returns the max |x| over its finite elements. Plain groups (whole,
  // and every element finite, non-zero, normal with |x| >= 2^-24: biased exponent 103..254,
  // which is nearly every activation) skip the per-element classification: bin = exponent - 103
  // (log2_bin without the lower clamp), count +1 per channel (kept once per row, in `plain`).
  // Any other group goes element by element through add().
  template <class T>
  __device__ __forceinline__ float add_row(const Group<T>& g, int nvalid, uint32_t* hist_col) {
    float row_max = 0.f;
    if (nvalid != VEC) {  // the last block's partial group (or none): only loaded elements
QA_UNROLL
      for (int j = 0; j < VEC; ++j)
        if (j < nvalid) row_max = add(j, qa::to_float(g.v[j]), hist_col, row_max);
      return row_max;
    }
    float v[VEC];
    uint32_t bin[VEC];
    bool is_plain = true;
QA_UNROLL
    for (int j = 0; j < VEC; ++j) {
      v[j] = qa::to_float(g.v[j]);
      bin[j] = ((__float_as_uint(v[j]) >> 23) & 0xffu) - uint32_t(127 - QA_LOG2_BIN_OFFSET);
      is_plain = is_plain && bin[j] <= uint32_t(254 - 127 + QA_LOG2_BIN_OFFSET);
    }
    if (!is_plain) {
QA_UNROLL
      for (int j = 0; j < VEC; ++j) row_max = add(j, v[j], hist_col, row_max);
      return row_max;
    }
    ++plain;
QA_UNROLL
    for (int j = 0; j < VEC; ++j) {
      const float x = v[j], a = fabsf(x), x2 = x * x;
      amax[j] = fmaxf(amax[j], a);
      s1[j] += x;
      s2[j] += x2;
      s3[j] += x2 * x;
      s4[j] += x2 * x2;
      row_max = fmaxf(row_max, a);
      atomicAdd(&hist_col[(bin[j] < ACT_BINS - 1 ? bin[j] : ACT_BINS - 1) * ACT_LANES], 1u);
    }
    return row_max;
  }

  // Finite elements of channel j.
  __device__ __forceinline__ uint32_t count(int j) const { return n[j] + plain; }
};

// Loads the group of row `row` starting at channel c0; `nvalid` (<= VEC) of its channels exist.
// The 16-byte load needs the group aligned and whole; otherwise element by element.
template <class T>
__device__ __forceinline__ Group<T> load_group(const T* __restrict__ row, uint32_t c0, int nvalid,
                                               bool vector_ok) {
  Group<T> g;
  if (vector_ok && nvalid == Group<T>::VEC) {
    g = *reinterpret_cast<const Group<T>*>(row + c0);
  } else {
    for (int j = 0; j < Group<T>::VEC; ++j) g.v[j] = j < nvalid ? row[c0 + j] : T{};
  }
  return g;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int s = 16; s > 0; s >>= 1) v = fmaxf(v, __shfl_xor_sync(qa::FULL_MASK, v, s));
  return v;
}

template <class T>
__device__ __forceinline__ void act_stats(const QaActStatsParams& p) {
  constexpr int VEC = Group<T>::VEC;
  constexpr int CH_PER_BLOCK = ACT_LANES * VEC;
  __shared__ uint32_t s_hist[HIST_ROWS * ACT_LANES];       // [row][lane]
  __shared__ uint32_t s_red[ACT_WARPS * ACT_LANES * 8];    // [warp][channel in block], VEC <= 8

  const int x = int(threadIdx.x);
  const int y = int(threadIdx.y);
  const int tid = y * ACT_LANES + x;
  const int nthreads = ACT_LANES * ACT_WARPS;

  for (int i = tid; i < HIST_ROWS * ACT_LANES; i += nthreads) s_hist[i] = 0;
  __syncthreads();

  const uint32_t c0 = (blockIdx.x * ACT_LANES + uint32_t(x)) * VEC;
  const int64_t left = int64_t(p.channels) - int64_t(c0);
  const int nvalid = left <= 0 ? 0 : (left >= VEC ? VEC : int(left));
  const uint64_t row0 = uint64_t(blockIdx.y) * p.tokens_per_block;
  const uint64_t row_end_wide = row0 + p.tokens_per_block;
  const uint32_t row_end = row_end_wide < p.tokens ? uint32_t(row_end_wide) : p.tokens;
  // 16-byte loads need every row start 16-byte aligned: the base and the row pitch in bytes.
  const bool vector_ok = ((p.x | uint64_t(p.row_stride) * sizeof(T)) & 15u) == 0;
  const T* __restrict__ base = qa::ptr<const T>(p.x);
  float* token_absmax = qa::ptr<float>(p.token_absmax);
  uint32_t* const hist_col = s_hist + x;

  LaneSums<VEC> acc;
  // Rows r = row0 + y + k * ACT_WARPS for k = 0, 1, ...; ACT_UNROLL of them loaded before use.
  for (uint32_t rb = uint32_t(row0) + uint32_t(y); rb < row_end; rb += ACT_UNROLL * ACT_WARPS) {
    Group<T> g[ACT_UNROLL];
QA_UNROLL
    for (int u = 0; u < ACT_UNROLL; ++u) {
      const uint32_t r = rb + uint32_t(u * ACT_WARPS);
      if (r < row_end && nvalid > 0)
        g[u] = load_group(base + int64_t(r) * p.row_stride, c0, nvalid, vector_ok);
    }
QA_UNROLL
    for (int u = 0; u < ACT_UNROLL; ++u) {
      const uint32_t r = rb + uint32_t(u * ACT_WARPS);
      if (r >= row_end) break;  // uniform across the warp: r depends on y and u only
      float row_max = acc.add_row(g[u], nvalid, hist_col);  // max |x| over the lane's finite elements
      if (token_absmax != nullptr) {
        // The warp covers every channel of this block in row r: one atomic per token and block.
        row_max = warp_max(row_max);
        if (x == 0 && row_max > 0.f)
          atomicMax(reinterpret_cast<unsigned*>(token_absmax + r), __float_as_uint(row_max));
      }
    }
  }
  __syncthreads();

  // Tensor counters: row b = sum over lanes of s_hist[b][lane]; one global add per block.
  QaTensorStats* ts = qa::ptr<QaTensorStats>(p.tensor_stats);
  if (tid < HIST_ROWS) {
    uint32_t total = 0;
    for (int l = 0; l < ACT_LANES; ++l) total += s_hist[tid * ACT_LANES + l];
    uint64_t* dst = tid == ZERO_ROW ? &ts->zeros : tid == NON_FINITE_ROW ? &ts->non_finite : &ts->log2_hist[tid];
    if (total) atomicAdd(reinterpret_cast<unsigned long long*>(dst), static_cast<unsigned long long>(total));
  }

  // Channel counters, one at a time: stage [warp][channel] in shared memory, then thread t sums
  // channel t (and t + nthreads, ...) over the ACT_WARPS warps and issues one global atomic.
  QaChannelStats* cs = qa::ptr<QaChannelStats>(p.channel_stats);
  const uint32_t block_c0 = blockIdx.x * uint32_t(CH_PER_BLOCK);
  // k: 0..3 the moments sum x^(k+1), 4 absmax, 5 count.
  for (int k = 0; k < 6; ++k) {
    for (int j = 0; j < VEC; ++j) {
      const float f = k == 0   ? acc.s1[j]
                      : k == 1 ? acc.s2[j]
                      : k == 2 ? acc.s3[j]
                      : k == 3 ? acc.s4[j]
                               : acc.amax[j];
      s_red[y * CH_PER_BLOCK + x * VEC + j] = k == 5 ? acc.count(j) : __float_as_uint(f);
    }
    __syncthreads();
    for (int c = tid; c < CH_PER_BLOCK; c += nthreads) {
      const uint32_t ch = block_c0 + uint32_t(c);
      if (ch >= p.channels) continue;
      if (k == 4) {  // absmax: max over warps; non-negative floats order like their bits
        uint32_t m = 0;
        for (int w = 0; w < ACT_WARPS; ++w) {
          const uint32_t b = s_red[w * CH_PER_BLOCK + c];
          m = b > m ? b : m;
        }
        if (m) atomicMax(reinterpret_cast<unsigned*>(&cs[ch].absmax), m);
      } else if (k == 5) {  // count: exact integer sum over warps
        uint32_t t = 0;
        for (int w = 0; w < ACT_WARPS; ++w) t += s_red[w * CH_PER_BLOCK + c];
        if (t)
          atomicAdd(reinterpret_cast<unsigned long long*>(&cs[ch].count),
                    static_cast<unsigned long long>(t));
      } else {  // moments: f32 sum over warps, merged into the f64 global
        float t = 0.f;
        for (int w = 0; w < ACT_WARPS; ++w) t += __uint_as_float(s_red[w * CH_PER_BLOCK + c]);
        double* dst = k == 0   ? &cs[ch].sum
                      : k == 1 ? &cs[ch].sum_sq
                      : k == 2 ? &cs[ch].sum_3rd
                               : &cs[ch].sum_4th;
        if (t != 0.f) atomicAdd(dst, double(t));
      }
    }
    __syncthreads();
  }
}

}  // namespace

QA_KERNEL_BOUNDS(qa_act_stats_f32, QaActStatsParams, p, 256, 4) { act_stats<float>(p); }
QA_KERNEL_BOUNDS(qa_act_stats_f16, QaActStatsParams, p, 256, 2) { act_stats<qa::f16>(p); }
QA_KERNEL_BOUNDS(qa_act_stats_bf16, QaActStatsParams, p, 256, 2) { act_stats<qa::bf16>(p); }
