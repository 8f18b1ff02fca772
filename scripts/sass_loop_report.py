#!/usr/bin/env python3
"""SASS loop report: the instruction mix of a kernel's steady-state loop, per MFLOP.

Reads SASS with cuobjdump (no GPU needed), finds the kernel's loops, counts the instructions of
one iteration along the longest path through each loop body, picks the steady-state loop by the
tile geometry (its mma and cp.async counts must equal what the tile implies) and normalises by the
iteration's useful FLOPs. Method and budgets: docs/sass_report.md.

usage:
  sass_loop_report.py FILE... --kernel GLOB [--arch sm_90]
                      [--geometry rows=16,block_n=64,d=128,threads=128,kind=full[,load_n=N][,ldgsts=off]]
                      [--dyn-smem BYTES] [--markdown]
      FILE: fatbins, cubins, or any ELF cuobjdump reads (an executable, libtorch_cuda.so, a
      cubin extracted with `cuobjdump -xelf`). GLOB matches mangled and demangled names (spaces
      ignored). Without --geometry, lists the kernel's loops only. kind: full (S = QKᵀ and
      O += PV), qk_only (S = QKᵀ only) or clipped (a qk_only loop and a full loop, together).
      load_n: keys per tile the block copies when its warps split the tile's keys (the
      tensor-core decode chunk: 64 loaded, 16 per warp); block_n when left out.
  sass_loop_report.py --list FILE...            the kernels (and architectures) in FILEs
  sass_loop_report.py --check BUDGETS DIR       every row of BUDGETS against DIR/<module>.fatbin
                                                (from `quietattn ptx --out-dir DIR`); exit 1 on
                                                any violation
  sass_loop_report.py --report BUDGETS DIR      the same rows as a markdown table
  sass_loop_report.py --self-test               parser/CFG tests on scripts/sass_report_testdata/
                                                and known_mix.cu compiled for sm_80 and sm_90

Tools: cuobjdump from $QA_CUOBJDUMP, else PATH; nvcc (self-test) from $QA_NVCC, $NVCC, else PATH
(.ci/tools.sh installs the pinned ones); c++filt, when present, for demangled names.
"""

import argparse
import collections
import concurrent.futures
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
TESTDATA = os.path.join(HERE, "sass_report_testdata")

# ---------------------------------------------------------------------------------------------
# Instruction classes: the one table. Key = the opcode's mnemonic (text before the first '.').
# The order is the report's column order; anything not listed is "other". NOP is not issued
# work (alignment padding) and is never counted.
CLASSES = (
    ("hmma", "tensor-core mma", "HMMA"),
    ("ldsm", "ldmatrix", "LDSM"),
    ("ldgsts", "cp.async", "LDGSTS"),
    ("mufu", "special function (by op)", "MUFU"),
    ("fp32", "fp32 arithmetic", "FFMA FMUL FADD FFMA32I FMUL32I FADD32I"),
    ("fmnmx", "fp32 min/max", "FMNMX"),
    ("shfl", "shuffle", "SHFL"),
    ("bar", "block barrier", "BAR"),
    ("cvt", "conversion", "F2F F2FP F2I F2IP I2F I2FP I2I I2IP FRND"),
    ("int", "integer / address",
     "IADD3 IADD IADD32I IMAD IMAD32I IMUL LEA LOP3 LOP LOP32I SHF SHL SHR MOV MOV32I IMNMX "
     "VIADD VIMNMX VIADDMNMX IABS SEL FSEL PRMT POPC FLO BREV SGXT BMSK IDP LDC S2R CS2R S2UR "
     "R2UR ULDC UIADD3 UIMAD ULEA ULOP3 USHF UMOV USEL UPRMT UFLO UPOPC UBREV UBMSK USGXT "
     "UIMNMX"),
    ("ctrl", "predicate / branch / sync",
     "ISETP FSETP HSETP2 DSETP PLOP3 UISETP UPLOP3 P2R R2P VOTE VOTEU BRA BRX JMP JMX CALL "
     "RET EXIT BSSY BSYNC BREAK BMOV WARPSYNC YIELD NANOSLEEP KILL ENDCOLLECTIVE DEPBAR "
     "LDGDEPBAR"),
    ("local", "local memory", "LDL STL"),
    ("shared", "shared memory", "LDS STS ATOMS"),
    ("global", "global / generic memory", "LDG STG LD ST ATOM ATOMG RED"),
    ("other", "everything else", ""),
)
CLASS_OF = {op: name for name, _, ops in CLASSES for op in ops.split()}
NOT_ISSUED = {"NOP"}

# ldmatrix moves 8 rows × 16 B per matrix and warp: .x1 = 128 B, .x2 = 256 B, .x4 = 512 B.
LDSM_BYTES_PER_MATRIX = 128
WARP = 32

# H100 (sm_90) occupancy model.
H100 = dict(regs_per_sm=65536, reg_unit_per_warp=256, smem_per_sm=228 * 1024,
            smem_per_block_max=227 * 1024, smem_reserved_per_block=1024, warps_per_sm=64,
            blocks_per_sm=32)


class ReportError(Exception):
    """A problem the user must fix (missing tool/file/kernel, no steady loop, bad budget row)."""


# ---------------------------------------------------------------------------------------------
# Parsing

@dataclass
class Instr:
    addr: int
    guard: str  # "" (always), "@P0", "@!P0", "@PT", ...
    opcode: str  # full, with modifiers: "LDSM.16.M88.4"
    operands: str
    text: str
    mnemonic: str = ""  # the opcode before its first '.'

    def __post_init__(self):
        self.mnemonic = self.opcode.split(".", 1)[0]


# "        /*0060*/               @P0 BRA 0x250 ;      /* 0x0000000000780947 */"
INSTR_RE = re.compile(r"^\s*/\*([0-9a-fA-F]+)\*/\s*\{?\s*(.*?)\s*;")
GUARD_RE = re.compile(r"^(@!?U?P(?:T|\d+))\s+")
FUNCTION_RE = re.compile(r"^\s*Function\s*:\s*(\S+)")
ARCH_RE = re.compile(r"^\s*code for (sm_\w+)")


def parse_instr(addr, body):
    guard = ""
    m = GUARD_RE.match(body)
    if m:
        guard, body = m.group(1), body[m.end():]
    opcode, _, operands = body.partition(" ")
    return Instr(int(addr, 16), guard, opcode, operands.strip(), body)


def parse_sass(text):
    """`cuobjdump -sass` output -> {(arch, function): [Instr]} (arch None when not printed)."""
    functions = {}
    arch, current = None, None
    for line in text.splitlines():
        if line.lstrip().startswith("/* 0x"):  # the second half of an instruction's encoding
            continue
        m = INSTR_RE.match(line)
        if m:
            if current is None:
                raise ReportError(f"SASS instruction before any 'Function :' line: {line.strip()}")
            current.append(parse_instr(m.group(1), m.group(2)))
            continue
        m = FUNCTION_RE.match(line)
        if m:
            current = functions.setdefault((arch, m.group(1)), [])
            continue
        m = ARCH_RE.match(line)
        if m:
            arch = m.group(1)
    return functions


@dataclass
class Resources:
    regs: int
    stack: int
    shared: int
    local: int


RES_ARCH_RE = re.compile(r"^arch = (sm_\w+)")
RES_FUNC_RE = re.compile(r"^\s*Function (\S+):\s*$")
RES_LINE_RE = re.compile(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)")


def parse_res_usage(text):
    """`cuobjdump -res-usage` output -> {(arch, function): Resources} (arch None for a bare cubin)."""
    out = {}
    arch, func = None, None
    for line in text.splitlines():
        m = RES_ARCH_RE.match(line)
        if m:
            arch = m.group(1)
            continue
        m = RES_FUNC_RE.match(line)
        if m:
            func = m.group(1)
            continue
        m = RES_LINE_RE.search(line)
        if m and func is not None:
            out[(arch, func)] = Resources(*map(int, m.groups()))
            func = None
    return out


# ---------------------------------------------------------------------------------------------
# Instruction mix

def ldsm_bytes(ins):
    """LDSM.16.M88.4 / .MT88.2 / .M88: the trailing matrix count (x1 when absent) × 128 B."""
    last = ins.opcode.rsplit(".", 1)[-1]
    matrices = int(last) if last in ("1", "2", "4") else 1
    return matrices * LDSM_BYTES_PER_MATRIX


def ldgsts_bytes(ins):
    """LDGSTS.E.BYPASS.128: bytes per lane from the size suffix (bits), × 32 lanes per warp."""
    sizes = [int(p) for p in ins.opcode.split(".")[1:] if p.isdigit()]
    if not sizes:
        raise ReportError(f"LDGSTS without a size suffix: {ins.text}")
    return sizes[-1] // 8 * WARP


@dataclass
class Mix:
    """Counts of issued instructions (per warp) over a set or path of blocks."""
    issued: int = 0
    opcodes: collections.Counter = field(default_factory=collections.Counter)  # by mnemonic
    mufu: collections.Counter = field(default_factory=collections.Counter)
    ldsm_bytes: int = 0
    ldgsts_bytes: int = 0

    @property
    def classes(self):
        out = collections.Counter()
        for op, n in self.opcodes.items():
            out[CLASS_OF.get(op, "other")] += n
        return out

    def add_instr(self, ins):
        if ins.mnemonic in NOT_ISSUED:
            return
        self.issued += 1
        self.opcodes[ins.mnemonic] += 1
        if ins.mnemonic == "MUFU":
            self.mufu[ins.opcode.split(".")[1] if "." in ins.opcode else "?"] += 1
        elif ins.mnemonic == "LDSM":
            self.ldsm_bytes += ldsm_bytes(ins)
        elif ins.mnemonic == "LDGSTS":
            self.ldgsts_bytes += ldgsts_bytes(ins)

    def __iadd__(self, other):
        self.issued += other.issued
        self.mufu += other.mufu
        self.opcodes += other.opcodes
        self.ldsm_bytes += other.ldsm_bytes
        self.ldgsts_bytes += other.ldgsts_bytes
        return self


# ---------------------------------------------------------------------------------------------
# Control flow graph

HEX_RE = re.compile(r"0x[0-9a-fA-F]+")
TRANSFERS = {"BRA", "BRX", "JMP", "JMX", "CALL", "RET", "EXIT", "KILL"}


def branch_target(ins):
    """The absolute address a BRA/JMP/CALL names (its last hex operand); None if indirect."""
    found = HEX_RE.findall(ins.operands)
    return int(found[-1], 16) if found else None


def is_conditional(ins):
    """Whether control may also fall through: a guard, a predicate operand (`BRA !P2, 0x..`),
    or a divergence test (`BRA.DIV`, `BRA.CONV`)."""
    if ins.guard not in ("", "@PT"):
        return True
    mods = ins.opcode.split(".")[1:]
    return "DIV" in mods or "CONV" in mods or "," in ins.operands


@dataclass(eq=False)  # hashed and compared by identity
class Block:
    start: int  # address of the first instruction
    instrs: list
    succs: list = field(default_factory=list)  # block starts
    preds: list = field(default_factory=list)
    mix: Mix = field(default_factory=Mix)


class Cfg:
    """Basic blocks and edges of one function.

    CALL.REL comes in two kinds. To a subroutine (an out-of-line slow path that reaches a RET):
    not an edge; the callee is a separate root and the call counts as one instruction. To code
    that never returns (nvcc's loop exit, `@!P2 CALL.REL.NOINC <after the loop's BRA>`): a jump,
    like a BRA."""

    def __init__(self, instrs):
        if not instrs:
            raise ReportError("empty function")
        self.instrs = sorted(instrs, key=lambda i: i.addr)
        addrs = {i.addr for i in self.instrs}
        order = self._split(addrs)
        self.blocks = {b.start: b for b in order}
        self.order = [b.start for b in order]
        for k, b in enumerate(order):
            nxt = order[k + 1].start if k + 1 < len(order) else None
            b.succs = self._successors(b.instrs[-1], nxt, addrs)
            for ins in b.instrs:
                b.mix.add_instr(ins)
        subroutines = self._resolve_calls(order)
        for b in order:
            for s in b.succs:
                self.blocks[s].preds.append(b.start)
        self.roots = [self.instrs[0].addr] + sorted(subroutines)

    def _split(self, addrs):
        """Basic blocks: a new one at the entry, every branch or call target, and after every
        control transfer."""
        leaders = {self.instrs[0].addr}
        for k, ins in enumerate(self.instrs):
            if ins.mnemonic not in TRANSFERS:
                continue
            if k + 1 < len(self.instrs):
                leaders.add(self.instrs[k + 1].addr)
            if ins.mnemonic in ("BRA", "JMP", "CALL") and branch_target(ins) in addrs:
                leaders.add(branch_target(ins))
        order = []
        for ins in self.instrs:
            if ins.addr in leaders:
                order.append(Block(ins.addr, []))
            order[-1].instrs.append(ins)
        return order

    def _resolve_calls(self, order):
        """Turns calls to code that never returns into jumps; returns the real subroutines."""
        calls = {b: branch_target(b.instrs[-1]) for b in order
                 if b.instrs[-1].mnemonic == "CALL" and branch_target(b.instrs[-1]) in self.blocks}
        subroutines = {t for t in set(calls.values()) if self._reaches_ret(t)}
        for b, target in calls.items():
            if target not in subroutines:
                fall = b.succs if is_conditional(b.instrs[-1]) else []
                b.succs = [target] + [s for s in fall if s != target]
        return subroutines

    def _reaches_ret(self, start):
        seen, stack = {start}, [start]
        while stack:
            b = self.blocks[stack.pop()]
            if b.instrs[-1].mnemonic == "RET":
                return True
            for s in b.succs:
                if s not in seen:
                    seen.add(s)
                    stack.append(s)
        return False

    @staticmethod
    def _successors(last, fallthrough, addrs):
        """Edges after `last`; a CALL falls through here (Cfg.__init__ turns loop exits into jumps)."""
        op = last.mnemonic
        if op == "BRA" or op == "JMP":
            # BRA.DIV goes to the fallback for a diverged warp (shuffles and votes redone under
            # WARPSYNC); the steady state runs converged, so that edge is not followed.
            if last.guard == "@!PT" or "DIV" in last.opcode.split(".")[1:]:
                return [fallthrough] if fallthrough is not None else []
            t = branch_target(last)
            out = [t] if t is not None and t in addrs else []
            if is_conditional(last) and fallthrough is not None and fallthrough not in out:
                out.append(fallthrough)
            return out
        if op in ("EXIT", "RET", "KILL", "BRX", "JMX"):
            # Indirect jumps (BRX/JMX) have unknown targets: nothing after them is counted.
            conditional = last.guard not in ("", "@PT") and op not in ("BRX", "JMX")
            return [fallthrough] if conditional and fallthrough is not None else []
        return [fallthrough] if fallthrough is not None else []


VROOT = -1


def reverse_postorder(cfg):
    """Blocks reachable from the roots (entry and call targets), in reverse postorder."""
    seen, post = set(), []
    for root in cfg.roots:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(cfg.blocks[root].succs))]
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                post.append(node)
                stack.pop()
            elif nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, iter(cfg.blocks[nxt].succs)))
    return post[::-1]


class Dominators:
    """Cooper-Harvey-Kennedy iterative dominators over the reachable blocks, from a virtual
    root above the entry and the call targets; `dominates` by dominator-tree intervals."""

    def __init__(self, cfg):
        rpo = reverse_postorder(cfg)
        index = {b: k + 1 for k, b in enumerate(rpo)}
        index[VROOT] = 0
        preds = {b: [p for p in cfg.blocks[b].preds if p in index] for b in rpo}
        for r in cfg.roots:
            preds[r] = preds[r] + [VROOT]
        idom = {VROOT: VROOT}

        def intersect(a, b):
            while a != b:
                while index[a] > index[b]:
                    a = idom[a]
                while index[b] > index[a]:
                    b = idom[b]
            return a

        changed = True
        while changed:
            changed = False
            for b in rpo:
                done = [p for p in preds[b] if p in idom]
                new = done[0]
                for p in done[1:]:
                    new = intersect(p, new)
                if idom.get(b) != new:
                    idom[b] = new
                    changed = True
        self.reachable = set(rpo)
        children = collections.defaultdict(list)
        for b in rpo:
            children[idom[b]].append(b)
        self.pre, self.post = {}, {}
        clock, stack = 0, [(VROOT, iter(children[VROOT]))]
        self.pre[VROOT] = clock
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            clock += 1
            if nxt is None:
                self.post[node] = clock
                stack.pop()
            else:
                self.pre[nxt] = clock
                stack.append((nxt, iter(children[nxt])))

    def dominates(self, a, b):
        return self.pre[a] <= self.pre[b] and self.post[b] <= self.post[a]


# ---------------------------------------------------------------------------------------------
# Loops and the longest path through one iteration

@dataclass(eq=False)  # compared by identity
class Loop:
    head: int  # address of the first instruction
    end: int  # address of the last back edge's branch
    latches: list  # block starts of the back edges' sources
    body: set  # block starts
    inner: int = 0  # loops nested inside this one
    local_in_body: int = 0  # LDL/STL anywhere in the body
    path: list = field(default_factory=list)  # block starts of the longest iteration
    mix: Mix = field(default_factory=Mix)  # counts along that path


def find_loops(cfg):
    """Natural loops, one per head: a back edge is a branch to a block that dominates it (in
    nvcc's layout, a BRA to an earlier or equal address, predicated or not). A branch to an
    earlier address that does not dominate it (code placed out of line returning into the
    middle of a loop) is an ordinary edge, not a loop."""
    dom = Dominators(cfg)
    back = collections.defaultdict(list)
    for b in cfg.order:
        if b not in dom.reachable:
            continue
        for s in cfg.blocks[b].succs:
            if dom.dominates(s, b):
                back[s].append(b)
    back_edges = {(u, h) for h, us in back.items() for u in us}
    loops = []
    for head in sorted(back):
        body = {head}
        stack = [u for u in back[head] if u != head]
        body.update(stack)
        while stack:
            for p in cfg.blocks[stack.pop()].preds:
                if p not in body and p in dom.reachable:
                    body.add(p)
                    stack.append(p)
        end = max(cfg.blocks[u].instrs[-1].addr for u in back[head])
        loops.append(Loop(head, end, sorted(back[head]), body))
    for loop in loops:
        loop.inner = sum(1 for other in loops if other.head != loop.head and other.head in loop.body)
        loop.local_in_body = sum(cfg.blocks[b].mix.opcodes[op] for b in loop.body for op in ("LDL", "STL"))
        loop.path = longest_iteration(cfg, loop, back_edges)
        for b in loop.path:
            loop.mix += cfg.blocks[b].mix
    return loops


def longest_iteration(cfg, loop, back_edges):
    """Blocks of the path from the head to a back edge of the loop with the most issued
    instructions, over the body's forward edges only (every back edge removed, so an inner
    loop's body counts once)."""
    fpreds = {b: [p for p in cfg.blocks[b].preds if p in loop.body and (p, b) not in back_edges]
              for b in loop.body}
    best, via = {}, {}  # the most instructions from the head through b, and b's predecessor there
    for b in topological_order(fpreds, loop.head):
        if b == loop.head:
            best[b] = cfg.blocks[b].mix.issued
            continue
        reached = [p for p in fpreds[b] if p in best]
        if reached:
            p = max(reached, key=lambda q: (best[q], -q))
            best[b], via[b] = best[p] + cfg.blocks[b].mix.issued, p
    latch = max((u for u in loop.latches if u in best), key=lambda u: (best[u], -u))
    path = [latch]
    while path[-1] != loop.head:
        path.append(via[path[-1]])
    return path[::-1]


def topological_order(preds, head):
    """Kahn's order of a loop body's forward-edge graph ({block: [predecessors]})."""
    succs = collections.defaultdict(list)
    for b, ps in preds.items():
        for p in ps:
            succs[p].append(b)
    indeg = {b: len(ps) for b, ps in preds.items()}
    ready = sorted(b for b, n in indeg.items() if n == 0)
    order = []
    while ready:
        b = ready.pop()
        order.append(b)
        for s in succs[b]:
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
    if len(order) != len(preds):
        raise ReportError(f"irreducible control flow in the loop at {head:#x}: "
                          "its forward edges form a cycle")
    return order


# ---------------------------------------------------------------------------------------------
# Geometry: what one steady iteration of one warp must contain

KINDS = ("full", "qk_only", "clipped")


@dataclass
class Geometry:
    rows: int  # query rows per warp
    block_n: int  # keys per tile
    d: int  # head dim
    threads: int  # per block
    kind: str = "full"
    check_ldgsts: bool = True
    load_n: int = 0  # keys per tile the block's threads copy; 0 = block_n

    @property
    def loaded_keys(self):
        return self.load_n or self.block_n

    def flops(self, kind):
        """Useful FLOPs of one warp iteration: 2·rows·n·d per GEMM (S = QKᵀ; O += PV)."""
        gemms = 1 if kind == "qk_only" else 2
        return 2 * gemms * self.rows * self.block_n * self.d

    def hmma(self, kind):
        """mma.m16n8k16 per warp iteration: S is rows × n over k = d; O is rows × d over k = n."""
        qk = self.rows // 16 * (self.block_n // 8) * (self.d // 16)
        pv = self.rows // 16 * (self.d // 8) * (self.block_n // 16)
        return qk if kind == "qk_only" else qk + pv

    def ldgsts(self, kind):
        """16-byte cp.async per thread per iteration: the K tile (and the V tile), n·d/8 chunks
        each with n = load_n (block_n unless the warps split the loaded tile's keys), shared by
        the block's threads; None when the row turns the check off."""
        if not self.check_ldgsts:
            return None
        tiles = 1 if kind == "qk_only" else 2
        return tiles * self.loaded_keys * self.d // 8 // self.threads

    def loop_kinds(self):
        """The loops one kernel must have: clipped softmax = a qk_only pass and a full pass."""
        return ("qk_only", "full") if self.kind == "clipped" else (self.kind,)

    def validate(self):
        if self.kind not in KINDS:
            raise ReportError(f"kind {self.kind!r}: expected one of {', '.join(KINDS)}")
        if self.rows % 16 or self.block_n % 16 or self.d % 16:
            raise ReportError(f"geometry {self}: rows_per_warp, block_n and d must be multiples of 16")
        if self.threads % WARP:
            raise ReportError(f"geometry {self}: threads must be a multiple of {WARP}")
        if self.load_n and (self.load_n < 0 or self.load_n % self.block_n):
            raise ReportError(f"geometry {self}: load_n must be a multiple of block_n (the loaded "
                              "tile holds whole warp tiles)")
        if self.check_ldgsts and (self.loaded_keys * self.d // 8) % self.threads:
            raise ReportError(f"geometry {self}: the tile's {self.loaded_keys * self.d // 8} 16-byte "
                              f"chunks do not split evenly over {self.threads} threads")

    def describe(self):
        extra = (f" load_n={self.load_n}" if self.load_n else "") + ("" if self.check_ldgsts else " ldgsts=off")
        return (f"rows={self.rows} block_n={self.block_n} d={self.d} threads={self.threads} "
                f"kind={self.kind}{extra}")


def parse_geometry(spec):
    """'rows=16,block_n=64,d=128,threads=128,kind=full[,load_n=64][,ldgsts=off]' -> Geometry."""
    fields = {}
    for item in spec.split(","):
        key, sep, value = item.partition("=")
        if not sep:
            raise ReportError(f"--geometry: {item!r} is not key=value")
        fields[key.strip()] = value.strip()
    known = {"rows", "block_n", "d", "threads", "kind", "ldgsts", "load_n"}
    unknown = set(fields) - known
    missing = {"rows", "block_n", "d", "threads"} - set(fields)
    if unknown or missing:
        problems = [f"{what} {', '.join(sorted(keys))}" for what, keys in
                    (("unknown key(s)", unknown), ("missing", missing)) if keys]
        raise ReportError(f"--geometry {spec!r}: {'; '.join(problems)} (keys: rows, block_n, d, "
                          "threads, kind, ldgsts, load_n)")
    try:
        g = Geometry(int(fields["rows"]), int(fields["block_n"]), int(fields["d"]),
                     int(fields["threads"]), fields.get("kind", "full"),
                     fields.get("ldgsts", "on") != "off", int(fields.get("load_n", 0)))
    except ValueError as e:
        raise ReportError(f"--geometry {spec!r}: {e}") from None
    g.validate()
    return g


def describe_loops(loops):
    """One line per loop with mma or cp.async work; the others (loaders, epilogues) summed up."""
    busy = [lp for lp in loops if lp.mix.classes["hmma"] or lp.mix.classes["ldgsts"]]
    lines = [f"    loop {lp.head:#07x}-{lp.end:#07x}: HMMA {lp.mix.classes['hmma']}, LDGSTS "
             f"{lp.mix.classes['ldgsts']}, issued {lp.mix.issued}, inner_loops {lp.inner}" for lp in busy]
    if len(loops) > len(busy):
        lines.append(f"    and {len(loops) - len(busy)} loop(s) without HMMA or LDGSTS")
    return "\n".join(lines) or "    (no loops)"


def select_loop(loops, geometry, kind, where):
    """The steady-state loop of `kind`: HMMA and LDGSTS counts per iteration equal to what the
    geometry implies, and among those the fewest issued instructions (a masked or boundary
    variant of the same loop issues more)."""
    want_hmma, want_ldgsts = geometry.hmma(kind), geometry.ldgsts(kind)
    matching = [lp for lp in loops if lp.mix.classes["hmma"] == want_hmma and
                (want_ldgsts is None or lp.mix.classes["ldgsts"] == want_ldgsts)]
    if not matching:
        want = f"HMMA {want_hmma}" + ("" if want_ldgsts is None else f", LDGSTS {want_ldgsts}")
        raise ReportError(f"{where}: no loop matches the {kind} geometry ({geometry.describe()}: "
                          f"{want} per iteration); loops seen:\n{describe_loops(loops)}")
    return min(matching, key=lambda lp: (lp.mix.issued, lp.head))


# ---------------------------------------------------------------------------------------------
# Reading files (one cuobjdump per file and dump, cached)

def find_tool(name, env_vars):
    for var in env_vars:
        if os.environ.get(var):
            return os.environ[var]
    path = shutil.which(name)
    if not path:
        raise ReportError(f"{name} not found (set {' or '.join(env_vars)} or put it on PATH; "
                          "`source .ci/tools.sh && install_tools` installs the pinned one)")
    return path


def run_tool(args):
    try:
        p = subprocess.run(args, capture_output=True, text=True)
    except OSError as e:
        raise ReportError(f"cannot run {args[0]}: {e}") from None
    if p.returncode != 0:
        raise ReportError(f"{' '.join(args[:3])}... failed ({p.returncode}): {p.stderr.strip()}")
    return p.stdout


def demangle(names):
    """{mangled: demangled} through c++filt when present (names unchanged otherwise)."""
    mangled = [n for n in names if n.startswith("_Z")]
    tool = shutil.which("c++filt")
    if not mangled or not tool:
        return {n: n for n in names}
    out = subprocess.run([tool], input="\n".join(mangled), capture_output=True, text=True).stdout
    table = dict(zip(mangled, out.splitlines()))
    return {n: table.get(n, n) for n in names}


class SassFile:
    """One file read with cuobjdump: resources of every function in one call; SASS of the named
    functions (`prefetch`, one call per batch), cached, re-read only for names not fetched yet.
    Disassembly is the slow part (about half a second per function and architecture), so only
    the functions asked for are dumped."""

    def __init__(self, path):
        if not os.path.isfile(path):
            raise ReportError(f"{path}: no such file")
        self.path = path
        self.cuobjdump = find_tool("cuobjdump", ["QA_CUOBJDUMP"])
        self.resources = parse_res_usage(run_tool([self.cuobjdump, "-res-usage", path]))
        self.sass = {}
        self.fetched = set()  # (arch or None = every arch, name)

    def names(self):
        return sorted({name for _, name in self.resources})

    def pretty(self):
        """{name: demangled name}, computed once."""
        if not hasattr(self, "_pretty"):
            self._pretty = demangle(self.names())
        return self._pretty

    def archs(self, name):
        return sorted(a for a, n in self.resources if n == name and a)

    def prefetch(self, names, arch=None):
        names = sorted({n for n in names if (None, n) not in self.fetched and (arch, n) not in self.fetched})
        if names:
            only_arch = ["-arch", arch] if arch else []
            text = run_tool([self.cuobjdump, "-sass", *only_arch, "-fun", ",".join(names), self.path])
            self.sass.update(parse_sass(text))
            self.fetched.update((arch, n) for n in names)

    def function(self, name, arch):
        """(instructions, resources, arch) of `name`; arch None = the only one there is."""
        self.prefetch([name], arch)
        available = {a for a, n in self.sass if n == name}
        if arch is None and len(available) == 1:
            arch = available.pop()
        if (arch, name) not in self.sass:
            have = ", ".join(sorted(a or "?" for a in available)) or "none"
            want = arch or "one architecture (give --arch)"
            raise ReportError(f"{self.path}: no {want} SASS of {name} (SASS present: {have})")
        # A bare cubin's resource listing names no architecture.
        res = self.resources.get((arch, name)) or self.resources.get((None, name))
        if res is None:
            raise ReportError(f"{self.path}: no resource usage for {name} ({arch})")
        return self.sass[(arch, name)], res, arch


_files = {}


def sass_file(path):
    if path not in _files:
        _files[path] = SassFile(path)
    return _files[path]


def match_kernels(files, pattern):
    """[(file, mangled name)] whose mangled or demangled name (spaces ignored) matches."""
    squeeze = pattern.replace(" ", "")
    out = []
    for f in files:
        pretty = f.pretty()
        for n in f.names():
            if fnmatch.fnmatchcase(n, pattern) or fnmatch.fnmatchcase(pretty[n].replace(" ", ""), squeeze):
                out.append((f, n))
    return out


# ---------------------------------------------------------------------------------------------
# One kernel's report

def blocks_per_sm_h100(regs, smem_bytes, threads):
    """Resident blocks per SM of an H100 (registers, shared memory, warps, blocks)."""
    warps = -(-threads // WARP)
    regs_per_warp = -(-((regs + 7) // 8 * 8) * WARP // H100["reg_unit_per_warp"]) * H100["reg_unit_per_warp"]
    by_regs = (H100["regs_per_sm"] // regs_per_warp) // warps if regs_per_warp else H100["blocks_per_sm"]
    if smem_bytes > H100["smem_per_block_max"]:
        return 0
    by_smem = H100["smem_per_sm"] // (smem_bytes + H100["smem_reserved_per_block"])
    return min(by_regs, by_smem, H100["warps_per_sm"] // warps, H100["blocks_per_sm"])


@dataclass
class KernelReport:
    name: str
    arch: str
    geometry: Geometry
    loops: list  # every loop found
    steady: list  # the selected loop per geometry.loop_kinds()
    res: Resources
    dyn_smem: int

    @property
    def mix(self):
        total = Mix()
        for lp in self.steady:
            total += lp.mix
        return total

    @property
    def mflop(self):
        """MFLOP the steady loops' counts are normalised by: one full pass for clipped."""
        kind = "full" if self.geometry.kind == "clipped" else self.geometry.kind
        return self.geometry.flops(kind) / 1e6

    def per_mflop(self, count):
        return count / self.mflop

    @property
    def inner_loops(self):
        return sum(lp.inner for lp in self.steady)

    @property
    def local_in_loop(self):
        return sum(lp.local_in_body for lp in self.steady)

    @property
    def blocks_per_sm(self):
        return blocks_per_sm_h100(self.res.regs, self.res.shared + self.dyn_smem, self.geometry.threads)


def analyse(instrs, res, name, arch, geometry, dyn_smem):
    loops = find_loops(Cfg(instrs))
    where = f"{name} ({arch})"
    steady = [select_loop(loops, geometry, kind, where) for kind in geometry.loop_kinds()]
    if len({lp.head for lp in steady}) != len(steady):
        raise ReportError(f"{where}: the qk_only and full passes resolved to the same loop")
    return KernelReport(name, arch, geometry, loops, steady, res, dyn_smem)


# ---------------------------------------------------------------------------------------------
# Output

def fmt(x):
    return f"{x:.1f}"


def text_report(r):
    g, mix = r.geometry, r.mix
    lines = [f"{r.name} ({r.arch}): {g.describe()}",
             f"  loops with HMMA or LDGSTS (longest path per iteration; * = steady):"]
    busy = [lp for lp in r.loops if lp.mix.classes["hmma"] or lp.mix.classes["ldgsts"] or lp in r.steady]
    for lp in busy:
        mark = "*" if lp in r.steady else " "
        lines.append(f"   {mark} {lp.head:#07x}-{lp.end:#07x}: issued {lp.mix.issued:5d}, HMMA "
                     f"{lp.mix.classes['hmma']:4d}, LDGSTS {lp.mix.classes['ldgsts']:3d}, "
                     f"inner_loops {lp.inner}, LDL/STL in body {lp.local_in_body}")
    if len(r.loops) > len(busy):
        lines.append(f"    and {len(r.loops) - len(busy)} other loop(s) (loaders, statistics, epilogue)")
    lines.append(f"  per iteration ({len(r.steady)} loop{'s' if len(r.steady) > 1 else ''}, "
                 f"{r.mflop:.4f} MFLOP): issued {mix.issued}")
    lines.append("  class      count   /MFLOP")
    classes = mix.classes
    for c, what, _ in CLASSES:
        lines.append(f"  {c:8s} {classes[c]:7d} {fmt(r.per_mflop(classes[c])):>8s}   {what}")
    lines.append(f"  {'issued':8s} {mix.issued:7d} {fmt(r.per_mflop(mix.issued)):>8s}")
    lines.append(f"  MUFU by op: " + (", ".join(f"{k} {v}" for k, v in sorted(mix.mufu.items())) or "none"))
    lines.append(f"  LDSM {mix.ldsm_bytes} B = {fmt(r.per_mflop(mix.ldsm_bytes / 1024))} KiB/MFLOP; "
                 f"cp.async {mix.ldgsts_bytes} B = {fmt(r.per_mflop(mix.ldgsts_bytes / 1024))} KiB/MFLOP; "
                 f"barriers {fmt(r.per_mflop(mix.classes['bar']))}/MFLOP")
    lines.append("  top opcodes: " + ", ".join(f"{k} {v}" for k, v in mix.opcodes.most_common(12)))
    lines.append(f"  registers {r.res.regs}, stack {r.res.stack} B, static smem {r.res.shared} B, "
                 f"dynamic smem {r.dyn_smem} B, H100 blocks/SM {r.blocks_per_sm}")
    flags = []
    if r.inner_loops:
        flags.append(f"inner_loops={r.inner_loops} (not flat: inner loop bodies counted once)")
    if r.local_in_loop:
        flags.append(f"LDL/STL in the loop: {r.local_in_loop}")
    lines.append("  flags: " + ("; ".join(flags) if flags else "none (flat, no local memory)"))
    return "\n".join(lines)


MD_COLUMNS = ("kernel", "sm", "issued", "HMMA", "LDSM KiB", "cp.async KiB", "BAR", "MUFU", "fp32",
              "FMNMX", "SHFL", "cvt", "int", "ctrl", "LDS/STS", "LDG/STG", "other", "regs",
              "stack", "smem static+dyn", "blocks/SM", "inner loops")


def markdown_header():
    return ("| " + " | ".join(MD_COLUMNS) + " |\n|" + "|".join("---" for _ in MD_COLUMNS) + "|")


def markdown_row(r):
    m, pm = r.mix, r.per_mflop
    cells = [f"`{r.name}`", r.arch, fmt(pm(m.issued)), fmt(pm(m.classes["hmma"])),
             fmt(pm(m.ldsm_bytes / 1024)), fmt(pm(m.ldgsts_bytes / 1024)), fmt(pm(m.classes["bar"])),
             fmt(pm(m.classes["mufu"])), fmt(pm(m.classes["fp32"])), fmt(pm(m.classes["fmnmx"])),
             fmt(pm(m.classes["shfl"])), fmt(pm(m.classes["cvt"])), fmt(pm(m.classes["int"])),
             fmt(pm(m.classes["ctrl"])), fmt(pm(m.classes["shared"])), fmt(pm(m.classes["global"])),
             fmt(pm(m.classes["other"] + m.classes["local"])), str(r.res.regs), str(r.res.stack),
             f"{r.res.shared}+{r.dyn_smem}", str(r.blocks_per_sm), str(r.inner_loops)]
    return "| " + " | ".join(cells) + " |"


# ---------------------------------------------------------------------------------------------
# Budgets

BUDGET_COLUMNS = ("module", "kernel", "sm", "rows_per_warp", "block_n", "d", "threads", "kind",
                  "dyn_smem", "max_issued", "max_ldsm_kib")


@dataclass
class Budget:
    line: int
    module: str
    kernel: str  # glob
    arch: str
    geometry: Geometry
    dyn_smem: int
    max_issued: float
    max_ldsm_kib: float
    max_local: int = 0  # LDL/STL allowed in the loop: a known gap the row names (`local=N`)


def parse_flags(flags, where):
    """A budget row's optional last words: ldgsts=off, load_n=N, local=N ->
    (check_ldgsts, load_n, local)."""
    check_ldgsts, load_n, local = True, 0, 0
    for fl in flags:
        key, _, value = fl.partition("=")
        if fl == "ldgsts=off":
            check_ldgsts = False
        elif key == "load_n" and value.isdigit():
            load_n = int(value)
        elif key == "local" and value.isdigit():
            local = int(value)
        else:
            raise ReportError(f"{where}: unknown flag {fl!r}; the flags are ldgsts=off, load_n=N and local=N")
    return check_ldgsts, load_n, local


def parse_budgets(path):
    """Whitespace-separated rows of BUDGET_COLUMNS, then optional flags (ldgsts=off, load_n=N,
    local=N);
    '#' comments."""
    budgets = []
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            words = raw.split("#", 1)[0].split()
            if not words:
                continue
            where = f"{path}:{n}"
            if len(words) < len(BUDGET_COLUMNS):
                raise ReportError(f"{where}: {len(words)} columns, expected {len(BUDGET_COLUMNS)} "
                                  f"({' '.join(BUDGET_COLUMNS)}) and optional flags")
            row = dict(zip(BUDGET_COLUMNS, words))
            check_ldgsts, load_n, local = parse_flags(words[len(BUDGET_COLUMNS):], where)
            try:
                g = Geometry(int(row["rows_per_warp"]), int(row["block_n"]), int(row["d"]),
                             int(row["threads"]), row["kind"], check_ldgsts, load_n)
                b = Budget(n, row["module"], row["kernel"], row["sm"], g, int(row["dyn_smem"]),
                           float(row["max_issued"]), float(row["max_ldsm_kib"]),
                           local)
            except ValueError as e:
                raise ReportError(f"{where}: {e}") from None
            try:
                g.validate()
            except ReportError as e:
                raise ReportError(f"{where}: {e}") from None
            budgets.append(b)
    if not budgets:
        raise ReportError(f"{path}: no budget rows")
    return budgets


def manifest_archs(directory):
    """{module: [sm, ...]} from DIR/manifest.tsv (module, ptx arch, SASS list, bytes); {} if absent."""
    path = os.path.join(directory, "manifest.tsv")
    if not os.path.isfile(path):
        return {}
    out = {}
    with open(path) as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) >= 3:
                out[cols[0]] = cols[2].split(",")
    return out


def budget_reports(budgets, directory):
    """[(budget, [KernelReport or error text per matching kernel] or error text)], with one
    cuobjdump per module and architecture."""
    manifest = manifest_archs(directory)
    by_module = collections.defaultdict(list)
    for b in budgets:
        by_module[b.module].append(b)

    def load(module):
        """The module's file, or why it cannot be read."""
        try:
            return sass_file(os.path.join(directory, module + ".fatbin"))
        except ReportError as e:
            return str(e)

    def disassemble(job):
        """SASS of every kernel the module's rows name for one architecture."""
        f, arch, rows = job
        try:
            f.prefetch((n for b in rows for _, n in match_kernels([f], b.kernel)), arch)
        except ReportError:
            pass  # budget_row reports it, row by row

    # cuobjdump dominates the run time: one per (module, arch), as many at once as there are cores.
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        files = dict(zip(by_module, pool.map(load, by_module)))
        jobs = [(f, arch, [b for b in by_module[m] if b.arch == arch]) for m, f in files.items()
                if not isinstance(f, str) for arch in sorted({b.arch for b in by_module[m]})]
        list(pool.map(disassemble, jobs))
    out = []
    for module, rows in by_module.items():
        f = files[module]
        for b in rows:
            out.append((b, f if isinstance(f, str) else budget_row(f, b, manifest.get(module))))
    return out


def budget_row(f, b, built_archs):
    if built_archs is not None and b.arch not in built_archs:
        return f"{f.path}: no {b.arch} SASS (the manifest lists {','.join(built_archs)})"
    found = match_kernels([f], b.kernel)
    if not found:
        return f"{f.path}: no kernel matches {b.kernel!r}"
    reports = []
    for _, name in found:
        try:
            instrs, res, _ = f.function(name, b.arch)
            reports.append(analyse(instrs, res, name, b.arch, b.geometry, b.dyn_smem))
        except ReportError as e:
            reports.append(str(e))
    return reports


def violations(r, b):
    out = []
    issued, ldsm = r.per_mflop(r.mix.issued), r.per_mflop(r.mix.ldsm_bytes / 1024)
    if issued > b.max_issued:
        out.append(f"issued {fmt(issued)}/MFLOP > {b.max_issued:g}")
    if ldsm > b.max_ldsm_kib:
        out.append(f"LDSM {fmt(ldsm)} KiB/MFLOP > {b.max_ldsm_kib:g}")
    if r.inner_loops:
        out.append(f"inner_loops={r.inner_loops}: the steady loop must be flat")
    if r.local_in_loop > b.max_local:
        allowed = f" (the row allows {b.max_local})" if b.max_local else ""
        out.append(f"{r.local_in_loop} LDL/STL in the loop{allowed}")
    return out


def check(budgets_path, directory):
    budgets = parse_budgets(budgets_path)
    head = (f"{'module':20s} {'kernel':34s} {'sm':6s} {'issued/MF':>9s} {'max':>6s} "
            f"{'LDSM KiB/MF':>11s} {'max':>5s} {'inner':>5s} {'LDL/STL':>7s} {'regs':>4s} "
            f"{'blk/SM':>6s}  result")
    print(head)
    print("-" * len(head))
    failed = entries = 0
    for b, result in budget_reports(budgets, directory):
        for r in [result] if isinstance(result, str) else result:
            entries += 1
            if isinstance(r, str):
                failed += 1
                print(f"{b.module:20s} {b.kernel:34s} {b.arch:6s}  FAIL ({budgets_path}:{b.line}): {r}")
                continue
            bad = violations(r, b)
            failed += bool(bad)
            print(f"{b.module:20s} {r.name:34s} {r.arch:6s} {fmt(r.per_mflop(r.mix.issued)):>9s} "
                  f"{b.max_issued:6g} {fmt(r.per_mflop(r.mix.ldsm_bytes / 1024)):>11s} "
                  f"{b.max_ldsm_kib:5g} {r.inner_loops:5d} {r.local_in_loop:7d} {r.res.regs:4d} "
                  f"{r.blocks_per_sm:6d}  " + ("FAIL: " + "; ".join(bad) if bad else "ok"))
    print(f"SASS loop budgets ({budgets_path}): {len(budgets)} rows, {entries} kernel entries, "
          + (f"{failed} FAILED" if failed else "all within budget"))
    return 1 if failed else 0


def report(budgets_path, directory):
    budgets = parse_budgets(budgets_path)
    print("Per MFLOP of one steady iteration (clipped: both passes per MFLOP of one full pass); "
          "KiB = ldmatrix / cp.async bytes per warp.\n")
    print(markdown_header())
    errors = []
    for b, result in budget_reports(budgets, directory):
        for r in [result] if isinstance(result, str) else result:
            if isinstance(r, str):
                errors.append(f"{budgets_path}:{b.line}: {r}")
            else:
                print(markdown_row(r))
    for e in errors:
        print(f"\nerror: {e}", file=sys.stderr)
    return 1 if errors else 0


# ---------------------------------------------------------------------------------------------
# Ad-hoc use on any file

def list_kernels(paths):
    for path in paths:
        f = sass_file(path)
        pretty = f.pretty()
        for n in f.names():
            archs = ",".join(f.archs(n)) or "(cubin)"
            print(f"{path}\t{archs}\t{n}" + (f"\t{pretty[n]}" if pretty[n] != n else ""))
    return 0


def adhoc(args):
    geometry = parse_geometry(args.geometry) if args.geometry else None
    files = [sass_file(p) for p in args.files]
    found = match_kernels(files, args.kernel)
    if not found:
        raise ReportError(f"no kernel matches {args.kernel!r} in {', '.join(args.files)} "
                          "(--list shows the names)")
    for f in files:
        f.prefetch((n for g, n in found if g is f), args.arch)
    if args.markdown:
        print(markdown_header())
    status = 0
    for f, name in found:
        archs = [args.arch] if args.arch else (f.archs(name) or [None])
        for arch in archs:
            instrs, res, arch = f.function(name, arch)
            if geometry is None:
                loops = find_loops(Cfg(instrs))
                print(f"{name} ({arch}): {len(loops)} loops, no --geometry given\n"
                      f"{describe_loops(loops)}")
                continue
            try:
                r = analyse(instrs, res, name, arch, geometry, args.dyn_smem)
            except ReportError as e:
                print(f"error: {e}", file=sys.stderr)
                status = 1
                continue
            print(markdown_row(r) if args.markdown else text_report(r))
    return status


# ---------------------------------------------------------------------------------------------
# Self-test

class SelfTest:
    def __init__(self):
        self.passed, self.failed = 0, 0

    def expect(self, what, got, want):
        if got == want:
            self.passed += 1
            print(f"ok   {what}: {got}")
        else:
            self.failed += 1
            print(f"FAIL {what}: got {got}, want {want}")

    def raises(self, what, fn, needle):
        try:
            fn()
        except ReportError as e:
            self.expect(what, needle in str(e), True)
            return
        self.expect(what, "no error", f"an error containing {needle!r}")


def canned(name):
    with open(os.path.join(TESTDATA, name)) as f:
        return parse_sass(f.read())


def loops_by_head(instrs):
    return {lp.head: lp for lp in find_loops(Cfg(instrs))}


def test_parser(t):
    fns = canned("two_functions.sass")
    t.expect("functions split per arch and name", sorted(fns), [("sm_80", "f"), ("sm_90", "f"), ("sm_90", "g")])
    ins = fns[("sm_90", "f")]
    t.expect("instructions of f (sm_90)", len(ins), 6)
    t.expect("guard and opcode", (ins[2].guard, ins[2].opcode, ins[2].operands), ("@!P0", "BRA", "0x50"))
    t.expect("predicate-operand BRA is conditional", is_conditional(parse_instr("0", "@!P0 BRA !P2, 0x10c90")), True)
    t.expect("its target", hex(branch_target(parse_instr("0", "@!P0 BRA !P2, 0x10c90"))), "0x10c90")
    t.expect("BRA.DIV is conditional", is_conditional(parse_instr("0", "BRA.DIV UR4, 0x100e0")), True)
    t.expect("plain BRA is not", is_conditional(parse_instr("0", "BRA 0x250")), False)
    t.expect("LDSM bytes .4/.2/x1", [ldsm_bytes(parse_instr("0", o + " R4, [R2]")) for o in
                                     ("LDSM.16.M88.4", "LDSM.16.MT88.2", "LDSM.16.M88")], [512, 256, 128])
    t.expect("LDGSTS bytes .128/.64", [ldgsts_bytes(parse_instr("0", o + " [R1], desc[UR6][R2.64]")) for o in
                                        ("LDGSTS.E.BYPASS.LTC128B.128", "LDGSTS.E.64")], [512, 256])
    with open(os.path.join(TESTDATA, "res_usage.txt")) as f:
        res = parse_res_usage(f.read())
    t.expect("res-usage per arch", (res[("sm_90", "f")].regs, res[("sm_80", "f")].shared), (40, 48))
    t.expect("res-usage of a bare cubin", res.get((None, "h")), Resources(29, 0, 5120, 0))


def test_flat_loop(t):
    loops = loops_by_head(canned("flat_loop.sass")[("sm_90", "flat")])
    t.expect("flat_loop: loop heads (the end-of-function BRA-to-self is unreachable)",
             [hex(h) for h in sorted(loops)], ["0x40"])
    lp = loops[0x40]
    # head 4 (+1 NOP) + long arm 5 + latch 3 = 12 (the short arm has 2)
    t.expect("flat_loop: longest path issued (NOPs excluded)", lp.mix.issued, 12)
    t.expect("flat_loop: classes on the path", {c: lp.mix.classes[c] for c in ("hmma", "ldsm", "mufu", "ctrl")},
             {"hmma": 2, "ldsm": 1, "mufu": 3, "ctrl": 5})
    t.expect("flat_loop: MUFU ops", dict(lp.mix.mufu), {"EX2": 2, "RCP": 1})
    t.expect("flat_loop: inner loops", lp.inner, 0)


def test_nested_loop(t):
    loops = loops_by_head(canned("nested_loop.sass")[("sm_80", "nested")])
    t.expect("nested_loop: loop heads (an out-of-line path returning mid-loop is no loop)",
             [hex(h) for h in sorted(loops)], ["0x30", "0x60"])
    outer, inner = loops[0x30], loops[0x60]
    t.expect("nested_loop: outer flags one inner loop", outer.inner, 1)
    t.expect("nested_loop: inner loop issued", inner.mix.issued, 3)
    # head 3 + inner 3 (once) + STL 1 + HMMA, @P3 BRA 2 + rare path 3 + latch 3 = 15; through
    # the BRA.DIV fallback it would be 16, but that edge is not followed.
    t.expect("nested_loop: outer issued (inner body once, rare path in, BRA.DIV fallback out)",
             outer.mix.issued, 15)
    t.expect("nested_loop: the rare path's MUFU.TANH is on the path", dict(outer.mix.mufu), {"TANH": 1})
    t.expect("nested_loop: outer LDGSTS counted once", outer.mix.classes["ldgsts"], 1)
    t.expect("nested_loop: LDL/STL anywhere in the body", outer.local_in_body, 1)
    t.expect("nested_loop: a CALL target's loop is found too", [hex(lp.head) for lp in find_loops(
        Cfg(canned("nested_loop.sass")[("sm_80", "with_call")]))], ["0x50"])
    exits = loops_by_head(canned("nested_loop.sass")[("sm_80", "call_exit")])
    t.expect("nested_loop: CALL.REL.NOINC loop exits are jumps (the outer loop is found)",
             {hex(h): lp.inner for h, lp in sorted(exits.items())}, {"0x10": 1, "0x20": 0})


def test_selection(t):
    g = Geometry(16, 16, 32, 32, "full")
    t.expect("geometry HMMA full / qk_only", (g.hmma("full"), g.hmma("qk_only")), (8, 4))
    t.expect("geometry LDGSTS full / qk_only", (g.ldgsts("full"), g.ldgsts("qk_only")), (4, 2))
    t.expect("H100 blocks: 221 regs, 81 KiB + 1 KiB smem, 128 threads", blocks_per_sm_h100(221, 1072 + 81920, 128), 2)
    t.expect("H100 blocks: 64 regs, no smem, 128 threads (warp limit)", blocks_per_sm_h100(64, 0, 128), 8)
    t.expect("H100 blocks: 32 regs, 32 threads (block limit)", blocks_per_sm_h100(32, 0, 32), 32)
    t.expect("H100 blocks: 168 regs -> 168·32 = 5376 per warp", blocks_per_sm_h100(168, 0, 128), 3)
    t.expect("H100 blocks: over 227 KiB", blocks_per_sm_h100(32, 228 * 1024, 128), 0)
    # The tensor-core decode chunk: each warp computes 16 keys of a 64-key tile the block loads.
    dec = parse_geometry("rows=16,block_n=16,d=128,threads=128,kind=full,load_n=64")
    t.expect("load_n: HMMA and FLOPs from block_n, LDGSTS full / qk_only from load_n",
             (dec.hmma("full"), dec.flops("full"), dec.ldgsts("full"), dec.ldgsts("qk_only")), (32, 131072, 16, 8))
    t.expect("load_n is named in the description", "load_n=64" in dec.describe(), True)
    t.raises("load_n not a multiple of block_n is an error",
             lambda: parse_geometry("rows=16,block_n=16,d=128,threads=128,load_n=24"), "multiple of block_n")


def test_budgets(t, work):
    rows = parse_budgets(os.path.join(HERE, "..", ".ci", "sass-budgets"))
    t.expect(".ci/sass-budgets parses: rows, modules", (len(rows), len({b.module for b in rows})), (72, 12))
    bad = os.path.join(work, "bad-budgets")
    with open(bad, "w") as f:
        f.write("# a comment\n\ntc_x  qa_x  sm_90  32 64 128 128 full 0 1350\n")
    t.raises("a short budget row names its line", lambda: parse_budgets(bad), "bad-budgets:3: 10 columns")
    with open(bad, "w") as f:
        f.write("tc_x  qa_x  sm_90  32 64 128 128 both 0 1350 40\n")
    t.raises("an unknown kind is an error", lambda: parse_budgets(bad), "kind 'both'")
    with open(bad, "w") as f:
        f.write("dec_x  qa_x  sm_90  16 16 128 128 full 0 4000 80 load_n=64\n")
    row = parse_budgets(bad)[0]
    t.expect("a load_n flag sets the loaded keys", (row.geometry.load_n, row.geometry.ldgsts("full")), (64, 16))
    with open(bad, "w") as f:
        f.write("dec_x  qa_x  sm_90  16 16 128 128 full 0 4000 80 load_n=sixty\n")
    t.raises("a malformed flag names its line", lambda: parse_budgets(bad), "bad-budgets:1: unknown flag")
    with open(bad, "w") as f:
        f.write("tc_x  qa_x  sm_90  32 64 128 128 full 0 1350 40 local=2\n")
    t.expect("local=N allows N LDL/STL in the loop", parse_budgets(bad)[0].max_local, 2)
    with open(bad, "w") as f:
        f.write("tc_x  qa_x  sm_90  32 64 128 128 full 0 1350 40 spills=2\n")
    t.raises("an unknown flag is an error", lambda: parse_budgets(bad), "unknown flag")


def compile_known_mix(nvcc, arch, out):
    src = os.path.join(TESTDATA, "known_mix.cu")
    run_tool([nvcc, "-O3", "-std=c++17", "-cubin", f"-arch={arch}", "-o", out, src])


def test_known_mix(t, nvcc, work):
    for arch in ("sm_80", "sm_90"):
        cubin = os.path.join(work, f"known_mix_{arch}.cubin")
        compile_known_mix(nvcc, arch, cubin)
        f = SassFile(cubin)
        instrs, res, _ = f.function("known_mix", None)
        full = Geometry(16, 16, 32, 32, "full")
        r = analyse(instrs, res, "known_mix", arch, full, 0)
        lp, m = r.steady[0], r.mix
        t.expect(f"known_mix {arch}: loops found", len(r.loops), 4)
        t.expect(f"known_mix {arch}: steady HMMA/LDGSTS/LDSM/BAR",
                 tuple(m.classes[c] for c in ("hmma", "ldgsts", "ldsm", "bar")), (8, 4, 7, 1))
        t.expect(f"known_mix {arch}: LDSM and cp.async bytes", (m.ldsm_bytes, m.ldgsts_bytes), (2688, 2048))
        twins = [o for o in r.loops if o.mix.classes["hmma"] == 8 and o.mix.classes["ldgsts"] == 4]
        t.expect(f"known_mix {arch}: the steady loop and its fatter twin both match", len(twins), 2)
        t.expect(f"known_mix {arch}: the pick is the one without the 16 ex2",
                 (m.classes["mufu"], max(o.mix.classes["mufu"] for o in twins)), (0, 16))
        t.expect(f"known_mix {arch}: flat, no local memory", (r.inner_loops, r.local_in_loop), (0, 0))
        t.expect(f"known_mix {arch}: issued/MFLOP = issued / 0.032768",
                 round(r.per_mflop(m.issued), 6), round(m.issued / 0.032768, 6))
        qk = analyse(instrs, res, "known_mix", arch, Geometry(16, 16, 32, 32, "qk_only"), 0)
        t.expect(f"known_mix {arch}: qk_only picks the 4-mma loop",
                 (qk.mix.classes["hmma"], qk.mix.classes["ldgsts"]), (4, 2))
        clipped = analyse(instrs, res, "known_mix", arch, Geometry(16, 16, 32, 32, "clipped"), 0)
        t.expect(f"known_mix {arch}: clipped = qk_only loop + full loop, per full-pass MFLOP",
                 (clipped.mix.classes["hmma"], clipped.mflop), (12, 0.032768))
        t.raises(f"known_mix {arch}: a wrong geometry names the loops it saw",
                 lambda: analyse(instrs, res, "known_mix", arch, Geometry(16, 16, 64, 32, "full"), 0),
                 "HMMA 8, LDGSTS 4")
        # Why the LDGSTS check is on by default: on HMMA alone, the cheaper thin_load decoy wins.
        within = Budget(0, "m", "known_mix", arch, full, 0, 2000, 100)
        over = Budget(0, "m", "known_mix", arch, full, 0, 1000, 50)
        t.expect(f"known_mix {arch}: budget violations (within, over)",
                 ([v.split()[0] for v in violations(r, within)], [v.split()[0] for v in violations(r, over)]),
                 ([], ["issued", "LDSM"]))
        no_ldgsts = analyse(instrs, res, "known_mix", arch, Geometry(16, 16, 32, 32, "full", False), 0)
        t.expect(f"known_mix {arch}: ldgsts=off takes the thin_load decoy (HMMA 8, LDGSTS 2)",
                 (no_ldgsts.mix.classes["hmma"], no_ldgsts.mix.classes["ldgsts"]), (8, 2))
        # load_n: over 64 threads a 16-key tile is 2 copies per thread (the thin_load decoy); the
        # steady loop's 4 are a 32-key tile loaded while each warp computes 16 keys of it.
        picks = [analyse(instrs, res, "known_mix", arch, Geometry(16, 16, 32, 64, "full", True, n), 0)
                 for n in (0, 32)]
        t.expect(f"known_mix {arch}: threads=64 picks thin_load, load_n=32 the steady loop (LDGSTS, MUFU)",
                 [(p.mix.classes["ldgsts"], p.mix.classes["mufu"]) for p in picks], [(2, 0), (4, 0)])
        t.expect(f"known_mix {arch}: load_n leaves the FLOPs to block_n", picks[1].mflop, 0.032768)


def self_test():
    t = SelfTest()
    with tempfile.TemporaryDirectory() as work:
        def test_known_mix_compiled(t):
            test_known_mix(t, find_tool("nvcc", ["QA_NVCC", "NVCC"]), work)

        def test_budgets_files(t):
            test_budgets(t, work)

        for group in (test_parser, test_flat_loop, test_nested_loop, test_selection, test_budgets_files,
                      test_known_mix_compiled):
            try:
                group(t)
            except Exception as e:  # a crash fails its group; the others still run
                t.expect(f"{group.__name__} runs to the end", f"{type(e).__name__}: {e}", "no exception")
    print(f"sass_loop_report self-test: {t.passed} passed, {t.failed} failed")
    return 1 if t.failed else 0


# ---------------------------------------------------------------------------------------------

def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[6:]))
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", nargs=2, metavar=("BUDGETS", "DIR"))
    mode.add_argument("--report", nargs=2, metavar=("BUDGETS", "DIR"))
    mode.add_argument("--self-test", action="store_true")
    mode.add_argument("--list", action="store_true", help="list the kernels in FILEs")
    ap.add_argument("files", nargs="*", metavar="FILE", help="fatbin, cubin or any ELF cuobjdump reads")
    ap.add_argument("--kernel", help="kernel name or glob")
    ap.add_argument("--arch", help="e.g. sm_90 (default: every architecture in the file)")
    ap.add_argument("--geometry",
                    help="rows=R,block_n=N,d=D,threads=T[,kind=full|qk_only|clipped][,load_n=N][,ldgsts=off]")
    ap.add_argument("--dyn-smem", type=int, default=0, help="dynamic shared memory per block (bytes)")
    ap.add_argument("--markdown", action="store_true", help="one markdown table row per kernel")
    args = ap.parse_args(argv)
    try:
        if args.self_test:
            return self_test()
        if args.check:
            return check(*args.check)
        if args.report:
            return report(*args.report)
        if not args.files:
            ap.error("give FILEs (with --kernel or --list), or --check/--report/--self-test")
        if args.list:
            return list_kernels(args.files)
        if not args.kernel:
            ap.error("--kernel GLOB is required (--list shows the names)")
        return adhoc(args)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
