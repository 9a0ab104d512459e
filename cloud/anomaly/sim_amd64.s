//go:build !purego

#include "textflag.h"

// The layout of boxes: blocks of 35 (boxRows) rows of 16 (boxLanes)
// float64s.
#define ROW 128
#define BLOCK 4480
#define DEN2 (32*ROW)
#define INV (33*ROW)
#define BASE (34*ROW)

DATA simAbsMask<>+0(SB)/8, $0x7fffffffffffffff
GLOBL simAbsMask<>(SB), RODATA|NOPTR, $8
DATA simOne<>+0(SB)/8, $0x3ff0000000000000
GLOBL simOne<>(SB), RODATA|NOPTR, $8
DATA simNegInf<>+0(SB)/8, $0xfff0000000000000
GLOBL simNegInf<>(SB), RODATA|NOPTR, $8

// TERM adds to Y(e) the term t + |t|, t = |x[d] - c| - w, of dimension d
// of the four boxes off bytes into the rows, with Y1 = x[d].
#define TERM(d, off, e) \
	VSUBPD (2*d*ROW+off)(SI), Y1, Y2; \
	VANDPD Y15, Y2, Y2; \
	VSUBPD ((2*d+1)*ROW+off)(SI), Y2, Y2; \
	VANDPD Y15, Y2, Y3; \
	VADDPD Y3, Y2, Y2; \
	VADDPD Y2, e, e

// DIM adds the terms of dimension d of the block's sixteen boxes to Y0,
// Y8, Y10 and Y11 (four boxes each).
#define DIM(d) \
	VBROADCASTSD (d*8)(DI), Y1; \
	TERM(d, 0, Y0); \
	TERM(d, 32, Y8); \
	TERM(d, 64, Y10); \
	TERM(d, 96, Y11)

// ENERGY stores the energy similarity of the four boxes off bytes into
// the rows: base - max(|x[15] - c| - w, 0)·inv, with Y1 = x[15]. VMAXPD
// returns its second source when one is NaN, so a NaN goes through as
// with Go's max; where the operands are 0 and -0 it may return -0, which
// gives the same es (base - ±0·inv).
#define ENERGY(off) \
	VSUBPD (30*ROW+off)(SI), Y1, Y2; \
	VANDPD Y15, Y2, Y2; \
	VSUBPD (31*ROW+off)(SI), Y2, Y2; \
	VMAXPD Y2, Y13, Y2; \
	VMULPD (INV+off)(SI), Y2, Y2; \
	VMOVUPD (BASE+off)(SI), Y3; \
	VSUBPD Y2, Y3, Y3; \
	VMOVUPD Y3, off(R12)

// SIM stores the similarity of the four boxes off bytes into the rows,
// from their sums Y(e) and energies: fs = 1 - e/den2, then
// fs·fs·fs·es·es; and it keeps the largest in Y9 (VMAXPD returns its
// second source, Y9, when the similarity is NaN or not larger).
#define SIM(off, e) \
	VDIVPD (DEN2+off)(SI), e, e; \
	VSUBPD e, Y14, e; \
	VMULPD e, e, Y4; \
	VMULPD e, Y4, Y4; \
	VMULPD off(R12), Y4, Y4; \
	VMULPD off(R12), Y4, Y4; \
	VMOVUPD Y4, off(R13); \
	VMAXPD Y9, Y4, Y9

// func simAVX2(x *[patD]float64, v, es, sim *float64, nblk int) float64
TEXT ·simAVX2(SB), NOSPLIT, $0-48
	MOVQ x+0(FP), DI
	MOVQ v+8(FP), SI
	MOVQ es+16(FP), R12
	MOVQ sim+24(FP), R13
	MOVQ nblk+32(FP), CX
	VBROADCASTSD simAbsMask<>(SB), Y15
	VBROADCASTSD simOne<>(SB), Y14
	VXORPD Y13, Y13, Y13
	VBROADCASTSD simNegInf<>(SB), Y9

loop:
	TESTQ CX, CX
	JZ done
	VXORPD Y0, Y0, Y0
	VXORPD Y8, Y8, Y8
	VXORPD Y10, Y10, Y10
	VXORPD Y11, Y11, Y11
	// The level dimensions, then the shape dimensions.
	DIM(8)
	DIM(9)
	DIM(10)
	DIM(11)
	DIM(12)
	DIM(13)
	DIM(14)
	DIM(15)
	VBROADCASTSD (15*8)(DI), Y1
	ENERGY(0)
	ENERGY(32)
	ENERGY(64)
	ENERGY(96)
	DIM(0)
	DIM(1)
	DIM(2)
	DIM(3)
	DIM(4)
	DIM(5)
	DIM(6)
	DIM(7)
	SIM(0, Y0)
	SIM(32, Y8)
	SIM(64, Y10)
	SIM(96, Y11)
	ADDQ $BLOCK, SI
	ADDQ $128, R12
	ADDQ $128, R13
	DECQ CX
	JMP loop

done:
	VEXTRACTF128 $1, Y9, X10
	VMAXPD X10, X9, X9
	VUNPCKHPD X9, X9, X10
	VMAXSD X10, X9, X9
	VZEROUPPER
	MOVSD X9, ret+40(FP)
	RET
