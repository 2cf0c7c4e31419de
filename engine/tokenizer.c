/* tokenizer.c: SentencePiece-style and byte-level BPE tokenizers from GGUF metadata, written
 * to give the same ids and text as llama.cpp's (llama-vocab.cpp, unicode.cpp) for the same
 * vocabulary. See mlc/tokenizer.h for the behaviour; comments here explain the why of the
 * less obvious parts, most of which are llama.cpp's conventions kept on purpose. */
#include "mlc/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ Unicode classes */

/* General-category classes of every code point, as runs: (first code point << 2) | class,
 * sorted; a run lasts until the next one starts. Generated at development time from the
 * Unicode 15.1 database (the version of llama.cpp's unicode-data.cpp), with
 * `pip install unicodedata2==15.1.0` and:
 *
 *   import unicodedata2 as u
 *   C = {'L': 1, 'N': 2, 'P': 3}           # letter, number, punctuation; else 0
 *   runs, prev = [], None
 *   for c in range(0x110000):
 *       k = C.get(u.category(chr(c))[0], 0)
 *       if k != prev: runs.append((c << 2) | k); prev = k
 *
 * White space (the White_Space property) is the short list in ucd_is_space(). */
static const uint32_t ucd_runs[1789] = {
    0x0000000, 0x0000087, 0x0000090, 0x0000097, 0x00000ac, 0x00000b3, 0x00000c2, 0x00000eb,
    0x00000f0, 0x00000ff, 0x0000105, 0x000016f, 0x0000178, 0x000017f, 0x0000180, 0x0000185,
    0x00001ef, 0x00001f0, 0x00001f7, 0x00001f8, 0x0000287, 0x0000288, 0x000029f, 0x00002a0,
    0x00002a9, 0x00002af, 0x00002b0, 0x00002ca, 0x00002d0, 0x00002d5, 0x00002db, 0x00002e0,
    0x00002e6, 0x00002e9, 0x00002ef, 0x00002f2, 0x00002ff, 0x0000301, 0x000035c, 0x0000361,
    0x00003dc, 0x00003e1, 0x0000b08, 0x0000b19, 0x0000b48, 0x0000b81, 0x0000b94, 0x0000bb1,
    0x0000bb4, 0x0000bb9, 0x0000bbc, 0x0000dc1, 0x0000dd4, 0x0000dd9, 0x0000de0, 0x0000de9,
    0x0000dfb, 0x0000dfd, 0x0000e00, 0x0000e19, 0x0000e1f, 0x0000e21, 0x0000e2c, 0x0000e31,
    0x0000e34, 0x0000e39, 0x0000e88, 0x0000e8d, 0x0000fd8, 0x0000fdd, 0x0001208, 0x0001229,
    0x00014c0, 0x00014c5, 0x000155c, 0x0001565, 0x000156b, 0x0001581, 0x0001627, 0x000162c,
    0x00016fb, 0x00016fc, 0x0001703, 0x0001704, 0x000170f, 0x0001710, 0x000171b, 0x000171c,
    0x0001741, 0x00017ac, 0x00017bd, 0x00017cf, 0x00017d4, 0x0001827, 0x000182c, 0x0001833,
    0x0001838, 0x000186f, 0x0001870, 0x0001877, 0x0001881, 0x000192c, 0x0001982, 0x00019ab,
    0x00019b9, 0x00019c0, 0x00019c5, 0x0001b53, 0x0001b55, 0x0001b58, 0x0001b95, 0x0001b9c,
    0x0001bb9, 0x0001bc2, 0x0001be9, 0x0001bf4, 0x0001bfd, 0x0001c03, 0x0001c38, 0x0001c41,
    0x0001c44, 0x0001c49, 0x0001cc0, 0x0001d35, 0x0001e98, 0x0001ec5, 0x0001ec8, 0x0001f02,
    0x0001f29, 0x0001fac, 0x0001fd1, 0x0001fd8, 0x0001fdf, 0x0001fe9, 0x0001fec, 0x0002001,
    0x0002058, 0x0002069, 0x000206c, 0x0002091, 0x0002094, 0x00020a1, 0x00020a4, 0x00020c3,
    0x00020fc, 0x0002101, 0x0002164, 0x000217b, 0x000217c, 0x0002181, 0x00021ac, 0x00021c1,
    0x0002220, 0x0002225, 0x000223c, 0x0002281, 0x0002328, 0x0002411, 0x00024e8, 0x00024f5,
    0x00024f8, 0x0002541, 0x0002544, 0x0002561, 0x0002588, 0x0002593, 0x000259a, 0x00025c3,
    0x00025c5, 0x0002604, 0x0002615, 0x0002634, 0x000263d, 0x0002644, 0x000264d, 0x00026a4,
    0x00026a9, 0x00026c4, 0x00026c9, 0x00026cc, 0x00026d9, 0x00026e8, 0x00026f5, 0x00026f8,
    0x0002739, 0x000273c, 0x0002771, 0x0002778, 0x000277d, 0x0002788, 0x000279a, 0x00027c1,
    0x00027c8, 0x00027d2, 0x00027e8, 0x00027f1, 0x00027f7, 0x00027f8, 0x0002815, 0x000282c,
    0x000283d, 0x0002844, 0x000284d, 0x00028a4, 0x00028a9, 0x00028c4, 0x00028c9, 0x00028d0,
    0x00028d5, 0x00028dc, 0x00028e1, 0x00028e8, 0x0002965, 0x0002974, 0x0002979, 0x000297c,
    0x000299a, 0x00029c0, 0x00029c9, 0x00029d4, 0x00029db, 0x00029dc, 0x0002a15, 0x0002a38,
    0x0002a3d, 0x0002a48, 0x0002a4d, 0x0002aa4, 0x0002aa9, 0x0002ac4, 0x0002ac9, 0x0002ad0,
    0x0002ad5, 0x0002ae8, 0x0002af5, 0x0002af8, 0x0002b41, 0x0002b44, 0x0002b81, 0x0002b88,
    0x0002b9a, 0x0002bc3, 0x0002bc4, 0x0002be5, 0x0002be8, 0x0002c15, 0x0002c34, 0x0002c3d,
    0x0002c44, 0x0002c4d, 0x0002ca4, 0x0002ca9, 0x0002cc4, 0x0002cc9, 0x0002cd0, 0x0002cd5,
    0x0002ce8, 0x0002cf5, 0x0002cf8, 0x0002d71, 0x0002d78, 0x0002d7d, 0x0002d88, 0x0002d9a,
    0x0002dc0, 0x0002dc5, 0x0002dca, 0x0002de0, 0x0002e0d, 0x0002e10, 0x0002e15, 0x0002e2c,
    0x0002e39, 0x0002e44, 0x0002e49, 0x0002e58, 0x0002e65, 0x0002e6c, 0x0002e71, 0x0002e74,
    0x0002e79, 0x0002e80, 0x0002e8d, 0x0002e94, 0x0002ea1, 0x0002eac, 0x0002eb9, 0x0002ee8,
    0x0002f41, 0x0002f44, 0x0002f9a, 0x0002fcc, 0x0003015, 0x0003034, 0x0003039, 0x0003044,
    0x0003049, 0x00030a4, 0x00030a9, 0x00030e8, 0x00030f5, 0x00030f8, 0x0003161, 0x000316c,
    0x0003175, 0x0003178, 0x0003181, 0x0003188, 0x000319a, 0x00031c0, 0x00031df, 0x00031e2,
    0x00031fc, 0x0003201, 0x0003204, 0x0003213, 0x0003215, 0x0003234, 0x0003239, 0x0003244,
    0x0003249, 0x00032a4, 0x00032a9, 0x00032d0, 0x00032d5, 0x00032e8, 0x00032f5, 0x00032f8,
    0x0003375, 0x000337c, 0x0003381, 0x0003388, 0x000339a, 0x00033c0, 0x00033c5, 0x00033cc,
    0x0003411, 0x0003434, 0x0003439, 0x0003444, 0x0003449, 0x00034ec, 0x00034f5, 0x00034f8,
    0x0003539, 0x000353c, 0x0003551, 0x000355c, 0x0003562, 0x000357d, 0x0003588, 0x000359a,
    0x00035e4, 0x00035e9, 0x0003600, 0x0003615, 0x000365c, 0x0003669, 0x00036c8, 0x00036cd,
    0x00036f0, 0x00036f5, 0x00036f8, 0x0003701, 0x000371c, 0x000379a, 0x00037c0, 0x00037d3,
    0x00037d4, 0x0003805, 0x00038c4, 0x00038c9, 0x00038d0, 0x0003901, 0x000391c, 0x000393f,
    0x0003942, 0x000396b, 0x0003970, 0x0003a05, 0x0003a0c, 0x0003a11, 0x0003a14, 0x0003a19,
    0x0003a2c, 0x0003a31, 0x0003a90, 0x0003a95, 0x0003a98, 0x0003a9d, 0x0003ac4, 0x0003ac9,
    0x0003ad0, 0x0003af5, 0x0003af8, 0x0003b01, 0x0003b14, 0x0003b19, 0x0003b1c, 0x0003b42,
    0x0003b68, 0x0003b71, 0x0003b80, 0x0003c01, 0x0003c04, 0x0003c13, 0x0003c4c, 0x0003c53,
    0x0003c54, 0x0003c82, 0x0003cd0, 0x0003ceb, 0x0003cf8, 0x0003d01, 0x0003d20, 0x0003d25,
    0x0003db4, 0x0003e17, 0x0003e18, 0x0003e21, 0x0003e34, 0x0003f43, 0x0003f54, 0x0003f67,
    0x0003f6c, 0x0004001, 0x00040ac, 0x00040fd, 0x0004102, 0x000412b, 0x0004141, 0x0004158,
    0x0004169, 0x0004178, 0x0004185, 0x0004188, 0x0004195, 0x000419c, 0x00041b9, 0x00041c4,
    0x00041d5, 0x0004208, 0x0004239, 0x000423c, 0x0004242, 0x0004268, 0x0004281, 0x0004318,
    0x000431d, 0x0004320, 0x0004335, 0x0004338, 0x0004341, 0x00043ef, 0x00043f1, 0x0004924,
    0x0004929, 0x0004938, 0x0004941, 0x000495c, 0x0004961, 0x0004964, 0x0004969, 0x0004978,
    0x0004981, 0x0004a24, 0x0004a29, 0x0004a38, 0x0004a41, 0x0004ac4, 0x0004ac9, 0x0004ad8,
    0x0004ae1, 0x0004afc, 0x0004b01, 0x0004b04, 0x0004b09, 0x0004b18, 0x0004b21, 0x0004b5c,
    0x0004b61, 0x0004c44, 0x0004c49, 0x0004c58, 0x0004c61, 0x0004d6c, 0x0004d83, 0x0004da6,
    0x0004df4, 0x0004e01, 0x0004e40, 0x0004e81, 0x0004fd8, 0x0004fe1, 0x0004ff8, 0x0005003,
    0x0005005, 0x00059b4, 0x00059bb, 0x00059bd, 0x0005a00, 0x0005a05, 0x0005a6f, 0x0005a74,
    0x0005a81, 0x0005baf, 0x0005bba, 0x0005bc5, 0x0005be4, 0x0005c01, 0x0005c48, 0x0005c7d,
    0x0005cc8, 0x0005cd7, 0x0005cdc, 0x0005d01, 0x0005d48, 0x0005d81, 0x0005db4, 0x0005db9,
    0x0005dc4, 0x0005e01, 0x0005ed0, 0x0005f53, 0x0005f5d, 0x0005f63, 0x0005f6c, 0x0005f71,
    0x0005f74, 0x0005f82, 0x0005fa8, 0x0005fc2, 0x0005fe8, 0x0006003, 0x000602c, 0x0006042,
    0x0006068, 0x0006081, 0x00061e4, 0x0006201, 0x0006214, 0x000621d, 0x00062a4, 0x00062a9,
    0x00062ac, 0x00062c1, 0x00063d8, 0x0006401, 0x000647c, 0x0006513, 0x000651a, 0x0006541,
    0x00065b8, 0x00065c1, 0x00065d4, 0x0006601, 0x00066b0, 0x00066c1, 0x0006728, 0x0006742,
    0x000676c, 0x0006801, 0x000685c, 0x000687b, 0x0006881, 0x0006954, 0x0006a02, 0x0006a28,
    0x0006a42, 0x0006a68, 0x0006a83, 0x0006a9d, 0x0006aa3, 0x0006ab8, 0x0006c15, 0x0006cd0,
    0x0006d15, 0x0006d34, 0x0006d42, 0x0006d6b, 0x0006d84, 0x0006df7, 0x0006dfc, 0x0006e0d,
    0x0006e84, 0x0006eb9, 0x0006ec2, 0x0006ee9, 0x0006f98, 0x0006ff3, 0x0007001, 0x0007090,
    0x00070ef, 0x0007102, 0x0007128, 0x0007135, 0x0007142, 0x0007169, 0x00071fb, 0x0007201,
    0x0007224, 0x0007241, 0x00072ec, 0x00072f5, 0x0007303, 0x0007320, 0x000734f, 0x0007350,
    0x00073a5, 0x00073b4, 0x00073b9, 0x00073d0, 0x00073d5, 0x00073dc, 0x00073e9, 0x00073ec,
    0x0007401, 0x0007700, 0x0007801, 0x0007c58, 0x0007c61, 0x0007c78, 0x0007c81, 0x0007d18,
    0x0007d21, 0x0007d38, 0x0007d41, 0x0007d60, 0x0007d65, 0x0007d68, 0x0007d6d, 0x0007d70,
    0x0007d75, 0x0007d78, 0x0007d7d, 0x0007df8, 0x0007e01, 0x0007ed4, 0x0007ed9, 0x0007ef4,
    0x0007ef9, 0x0007efc, 0x0007f09, 0x0007f14, 0x0007f19, 0x0007f34, 0x0007f41, 0x0007f50,
    0x0007f59, 0x0007f70, 0x0007f81, 0x0007fb4, 0x0007fc9, 0x0007fd4, 0x0007fd9, 0x0007ff4,
    0x0008043, 0x00080a0, 0x00080c3, 0x0008110, 0x0008117, 0x0008148, 0x000814f, 0x000817c,
    0x00081c2, 0x00081c5, 0x00081c8, 0x00081d2, 0x00081e8, 0x00081f7, 0x00081fd, 0x0008202,
    0x0008228, 0x0008237, 0x000823c, 0x0008241, 0x0008274, 0x0008409, 0x000840c, 0x000841d,
    0x0008420, 0x0008429, 0x0008450, 0x0008455, 0x0008458, 0x0008465, 0x0008478, 0x0008491,
    0x0008494, 0x0008499, 0x000849c, 0x00084a1, 0x00084a4, 0x00084a9, 0x00084b8, 0x00084bd,
    0x00084e8, 0x00084f1, 0x0008500, 0x0008515, 0x0008528, 0x0008539, 0x000853c, 0x0008542,
    0x000860d, 0x0008616, 0x0008628, 0x0008c23, 0x0008c30, 0x0008ca7, 0x0008cac, 0x0009182,
    0x0009270, 0x00093aa, 0x0009400, 0x0009da3, 0x0009dda, 0x0009e50, 0x0009f17, 0x0009f1c,
    0x0009f9b, 0x0009fc0, 0x000a60f, 0x000a664, 0x000a763, 0x000a770, 0x000a7f3, 0x000a7f8,
    0x000b001, 0x000b394, 0x000b3ad, 0x000b3bc, 0x000b3c9, 0x000b3d0, 0x000b3e7, 0x000b3f6,
    0x000b3fb, 0x000b401, 0x000b498, 0x000b49d, 0x000b4a0, 0x000b4b5, 0x000b4b8, 0x000b4c1,
    0x000b5a0, 0x000b5bd, 0x000b5c3, 0x000b5c4, 0x000b601, 0x000b65c, 0x000b681, 0x000b69c,
    0x000b6a1, 0x000b6bc, 0x000b6c1, 0x000b6dc, 0x000b6e1, 0x000b6fc, 0x000b701, 0x000b71c,
    0x000b721, 0x000b73c, 0x000b741, 0x000b75c, 0x000b761, 0x000b77c, 0x000b803, 0x000b8bd,
    0x000b8c3, 0x000b940, 0x000b94b, 0x000b978, 0x000c007, 0x000c010, 0x000c015, 0x000c01e,
    0x000c023, 0x000c048, 0x000c053, 0x000c080, 0x000c086, 0x000c0a8, 0x000c0c3, 0x000c0c5,
    0x000c0d8, 0x000c0e2, 0x000c0ed, 0x000c0f7, 0x000c0f8, 0x000c105, 0x000c25c, 0x000c275,
    0x000c283, 0x000c285, 0x000c3ef, 0x000c3f1, 0x000c400, 0x000c415, 0x000c4c0, 0x000c4c5,
    0x000c63c, 0x000c64a, 0x000c658, 0x000c681, 0x000c700, 0x000c7c1, 0x000c800, 0x000c882,
    0x000c8a8, 0x000c922, 0x000c940, 0x000c946, 0x000c980, 0x000ca02, 0x000ca28, 0x000cac6,
    0x000cb00, 0x000d001, 0x0013700, 0x0013801, 0x0029234, 0x0029341, 0x00293fb, 0x0029401,
    0x0029837, 0x0029841, 0x0029882, 0x00298a9, 0x00298b0, 0x0029901, 0x00299bc, 0x00299cf,
    0x00299d0, 0x00299fb, 0x00299fd, 0x0029a78, 0x0029a81, 0x0029b9a, 0x0029bc0, 0x0029bcb,
    0x0029be0, 0x0029c5d, 0x0029c80, 0x0029c89, 0x0029e24, 0x0029e2d, 0x0029f2c, 0x0029f41,
    0x0029f48, 0x0029f4d, 0x0029f50, 0x0029f55, 0x0029f68, 0x0029fc9, 0x002a008, 0x002a00d,
    0x002a018, 0x002a01d, 0x002a02c, 0x002a031, 0x002a08c, 0x002a0c2, 0x002a0d8, 0x002a101,
    0x002a1d3, 0x002a1e0, 0x002a209, 0x002a2d0, 0x002a33b, 0x002a342, 0x002a368, 0x002a3c9,
    0x002a3e3, 0x002a3ed, 0x002a3f3, 0x002a3f5, 0x002a3fc, 0x002a402, 0x002a429, 0x002a498,
    0x002a4bb, 0x002a4c1, 0x002a51c, 0x002a57f, 0x002a581, 0x002a5f4, 0x002a611, 0x002a6cc,
    0x002a707, 0x002a738, 0x002a73d, 0x002a742, 0x002a768, 0x002a77b, 0x002a781, 0x002a794,
    0x002a799, 0x002a7c2, 0x002a7e9, 0x002a7fc, 0x002a801, 0x002a8a4, 0x002a901, 0x002a90c,
    0x002a911, 0x002a930, 0x002a942, 0x002a968, 0x002a973, 0x002a981, 0x002a9dc, 0x002a9e9,
    0x002a9ec, 0x002a9f9, 0x002aac0, 0x002aac5, 0x002aac8, 0x002aad5, 0x002aadc, 0x002aae5,
    0x002aaf8, 0x002ab01, 0x002ab04, 0x002ab09, 0x002ab0c, 0x002ab6d, 0x002ab7b, 0x002ab81,
    0x002abac, 0x002abc3, 0x002abc9, 0x002abd4, 0x002ac05, 0x002ac1c, 0x002ac25, 0x002ac3c,
    0x002ac45, 0x002ac5c, 0x002ac81, 0x002ac9c, 0x002aca1, 0x002acbc, 0x002acc1, 0x002ad6c,
    0x002ad71, 0x002ada8, 0x002adc1, 0x002af8c, 0x002afaf, 0x002afb0, 0x002afc2, 0x002afe8,
    0x002b001, 0x0035e90, 0x0035ec1, 0x0035f1c, 0x0035f2d, 0x0035ff0, 0x003e401, 0x003e9b8,
    0x003e9c1, 0x003eb68, 0x003ec01, 0x003ec1c, 0x003ec4d, 0x003ec60, 0x003ec75, 0x003ec78,
    0x003ec7d, 0x003eca4, 0x003eca9, 0x003ecdc, 0x003ece1, 0x003ecf4, 0x003ecf9, 0x003ecfc,
    0x003ed01, 0x003ed08, 0x003ed0d, 0x003ed14, 0x003ed19, 0x003eec8, 0x003ef4d, 0x003f4fb,
    0x003f500, 0x003f541, 0x003f640, 0x003f649, 0x003f720, 0x003f7c1, 0x003f7f0, 0x003f843,
    0x003f868, 0x003f8c3, 0x003f94c, 0x003f953, 0x003f988, 0x003f98f, 0x003f990, 0x003f9a3,
    0x003f9a4, 0x003f9ab, 0x003f9b0, 0x003f9c1, 0x003f9d4, 0x003f9d9, 0x003fbf4, 0x003fc07,
    0x003fc10, 0x003fc17, 0x003fc2c, 0x003fc33, 0x003fc42, 0x003fc6b, 0x003fc70, 0x003fc7f,
    0x003fc85, 0x003fcef, 0x003fcf8, 0x003fcff, 0x003fd00, 0x003fd05, 0x003fd6f, 0x003fd70,
    0x003fd77, 0x003fd78, 0x003fd7f, 0x003fd99, 0x003fefc, 0x003ff09, 0x003ff20, 0x003ff29,
    0x003ff40, 0x003ff49, 0x003ff60, 0x003ff69, 0x003ff74, 0x0040001, 0x0040030, 0x0040035,
    0x004009c, 0x00400a1, 0x00400ec, 0x00400f1, 0x00400f8, 0x00400fd, 0x0040138, 0x0040141,
    0x0040178, 0x0040201, 0x00403ec, 0x0040403, 0x004040c, 0x004041e, 0x00404d0, 0x0040502,
    0x00405e4, 0x004062a, 0x0040630, 0x0040a01, 0x0040a74, 0x0040a81, 0x0040b44, 0x0040b86,
    0x0040bf0, 0x0040c01, 0x0040c82, 0x0040c90, 0x0040cb5, 0x0040d06, 0x0040d09, 0x0040d2a,
    0x0040d2c, 0x0040d41, 0x0040dd8, 0x0040e01, 0x0040e78, 0x0040e7f, 0x0040e81, 0x0040f10,
    0x0040f21, 0x0040f43, 0x0040f46, 0x0040f58, 0x0041001, 0x0041278, 0x0041282, 0x00412a8,
    0x00412c1, 0x0041350, 0x0041361, 0x00413f0, 0x0041401, 0x00414a0, 0x00414c1, 0x0041590,
    0x00415bf, 0x00415c1, 0x00415ec, 0x00415f1, 0x004162c, 0x0041631, 0x004164c, 0x0041651,
    0x0041658, 0x004165d, 0x0041688, 0x004168d, 0x00416c8, 0x00416cd, 0x00416e8, 0x00416ed,
    0x00416f4, 0x0041801, 0x0041cdc, 0x0041d01, 0x0041d58, 0x0041d81, 0x0041da0, 0x0041e01,
    0x0041e18, 0x0041e1d, 0x0041ec4, 0x0041ec9, 0x0041eec, 0x0042001, 0x0042018, 0x0042021,
    0x0042024, 0x0042029, 0x00420d8, 0x00420dd, 0x00420e4, 0x00420f1, 0x00420f4, 0x00420fd,
    0x0042158, 0x004215f, 0x0042162, 0x0042181, 0x00421dc, 0x00421e6, 0x0042201, 0x004227c,
    0x004229e, 0x00422c0, 0x0042381, 0x00423cc, 0x00423d1, 0x00423d8, 0x00423ee, 0x0042401,
    0x004245a, 0x0042470, 0x004247f, 0x0042481, 0x00424e8, 0x00424ff, 0x0042500, 0x0042601,
    0x00426e0, 0x00426f2, 0x00426f9, 0x0042702, 0x0042740, 0x004274a, 0x0042801, 0x0042804,
    0x0042841, 0x0042850, 0x0042855, 0x0042860, 0x0042865, 0x00428d8, 0x0042902, 0x0042924,
    0x0042943, 0x0042964, 0x0042981, 0x00429f6, 0x00429ff, 0x0042a01, 0x0042a76, 0x0042a80,
    0x0042b01, 0x0042b20, 0x0042b25, 0x0042b94, 0x0042bae, 0x0042bc3, 0x0042bdc, 0x0042c01,
    0x0042cd8, 0x0042ce7, 0x0042d01, 0x0042d58, 0x0042d62, 0x0042d81, 0x0042dcc, 0x0042de2,
    0x0042e01, 0x0042e48, 0x0042e67, 0x0042e74, 0x0042ea6, 0x0042ec0, 0x0043001, 0x0043124,
    0x0043201, 0x00432cc, 0x0043301, 0x00433cc, 0x00433ea, 0x0043401, 0x0043490, 0x00434c2,
    0x00434e8, 0x0043982, 0x00439fc, 0x0043a01, 0x0043aa8, 0x0043ab7, 0x0043ab8, 0x0043ac1,
    0x0043ac8, 0x0043c01, 0x0043c76, 0x0043c9d, 0x0043ca0, 0x0043cc1, 0x0043d18, 0x0043d46,
    0x0043d57, 0x0043d68, 0x0043dc1, 0x0043e08, 0x0043e1b, 0x0043e28, 0x0043ec1, 0x0043f16,
    0x0043f30, 0x0043f81, 0x0043fdc, 0x004400d, 0x00440e0, 0x004411f, 0x0044138, 0x004414a,
    0x00441c0, 0x00441c5, 0x00441cc, 0x00441d5, 0x00441d8, 0x004420d, 0x00442c0, 0x00442ef,
    0x00442f4, 0x00442fb, 0x0044308, 0x0044341, 0x00443a4, 0x00443c2, 0x00443e8, 0x004440d,
    0x004449c, 0x00444da, 0x0044503, 0x0044511, 0x0044514, 0x004451d, 0x0044520, 0x0044541,
    0x00445cc, 0x00445d3, 0x00445d9, 0x00445dc, 0x004460d, 0x00446cc, 0x0044705, 0x0044717,
    0x0044724, 0x0044737, 0x0044738, 0x0044742, 0x0044769, 0x004476f, 0x0044771, 0x0044777,
    0x0044780, 0x0044786, 0x00447d4, 0x0044801, 0x0044848, 0x004484d, 0x00448b0, 0x00448e3,
    0x00448f8, 0x00448fd, 0x0044904, 0x0044a01, 0x0044a1c, 0x0044a21, 0x0044a24, 0x0044a29,
    0x0044a38, 0x0044a3d, 0x0044a78, 0x0044a7d, 0x0044aa7, 0x0044aa8, 0x0044ac1, 0x0044b7c,
    0x0044bc2, 0x0044be8, 0x0044c15, 0x0044c34, 0x0044c3d, 0x0044c44, 0x0044c4d, 0x0044ca4,
    0x0044ca9, 0x0044cc4, 0x0044cc9, 0x0044cd0, 0x0044cd5, 0x0044ce8, 0x0044cf5, 0x0044cf8,
    0x0044d41, 0x0044d44, 0x0044d75, 0x0044d88, 0x0045001, 0x00450d4, 0x004511d, 0x004512f,
    0x0045142, 0x004516b, 0x0045170, 0x0045177, 0x0045178, 0x004517d, 0x0045188, 0x0045201,
    0x00452c0, 0x0045311, 0x004531b, 0x004531d, 0x0045320, 0x0045342, 0x0045368, 0x0045601,
    0x00456bc, 0x0045707, 0x0045761, 0x0045770, 0x0045801, 0x00458c0, 0x0045907, 0x0045911,
    0x0045914, 0x0045942, 0x0045968, 0x0045983, 0x00459b4, 0x0045a01, 0x0045aac, 0x0045ae1,
    0x0045ae7, 0x0045ae8, 0x0045b02, 0x0045b28, 0x0045c01, 0x0045c6c, 0x0045cc2, 0x0045cf3,
    0x0045cfc, 0x0045d01, 0x0045d1c, 0x0046001, 0x00460b0, 0x00460ef, 0x00460f0, 0x0046281,
    0x0046382, 0x00463cc, 0x00463fd, 0x004641c, 0x0046425, 0x0046428, 0x0046431, 0x0046450,
    0x0046455, 0x004645c, 0x0046461, 0x00464c0, 0x00464fd, 0x0046500, 0x0046505, 0x0046508,
    0x0046513, 0x004651c, 0x0046542, 0x0046568, 0x0046681, 0x00466a0, 0x00466a9, 0x0046744,
    0x0046785, 0x004678b, 0x004678d, 0x0046790, 0x0046801, 0x0046804, 0x004682d, 0x00468cc,
    0x00468e9, 0x00468ec, 0x00468ff, 0x004691c, 0x0046941, 0x0046944, 0x0046971, 0x0046a28,
    0x0046a6b, 0x0046a75, 0x0046a7b, 0x0046a8c, 0x0046ac1, 0x0046be4, 0x0046c03, 0x0046c28,
    0x0047001, 0x0047024, 0x0047029, 0x00470bc, 0x0047101, 0x0047107, 0x0047118, 0x0047142,
    0x00471b4, 0x00471c3, 0x00471c9, 0x0047240, 0x0047401, 0x004741c, 0x0047421, 0x0047428,
    0x004742d, 0x00474c4, 0x0047519, 0x004751c, 0x0047542, 0x0047568, 0x0047581, 0x0047598,
    0x004759d, 0x00475a4, 0x00475a9, 0x0047628, 0x0047661, 0x0047664, 0x0047682, 0x00476a8,
    0x0047b81, 0x0047bcc, 0x0047bdf, 0x0047be4, 0x0047c09, 0x0047c0c, 0x0047c11, 0x0047c44,
    0x0047c49, 0x0047cd0, 0x0047d0f, 0x0047d42, 0x0047d68, 0x0047ec1, 0x0047ec4, 0x0047f02,
    0x0047f54, 0x0047fff, 0x0048001, 0x0048e68, 0x0049002, 0x00491bc, 0x00491c3, 0x00491d4,
    0x0049201, 0x0049510, 0x004be41, 0x004bfc7, 0x004bfcc, 0x004c001, 0x004d0c0, 0x004d105,
    0x004d11c, 0x0051001, 0x005191c, 0x005a001, 0x005a8e4, 0x005a901, 0x005a97c, 0x005a982,
    0x005a9a8, 0x005a9bb, 0x005a9c1, 0x005aafc, 0x005ab02, 0x005ab28, 0x005ab41, 0x005abb8,
    0x005abd7, 0x005abd8, 0x005ac01, 0x005acc0, 0x005acdf, 0x005acf0, 0x005ad01, 0x005ad13,
    0x005ad14, 0x005ad42, 0x005ad68, 0x005ad6e, 0x005ad88, 0x005ad8d, 0x005ade0, 0x005adf5,
    0x005ae40, 0x005b901, 0x005ba02, 0x005ba5f, 0x005ba6c, 0x005bc01, 0x005bd2c, 0x005bd41,
    0x005bd44, 0x005be4d, 0x005be80, 0x005bf81, 0x005bf8b, 0x005bf8d, 0x005bf90, 0x005c001,
    0x0061fe0, 0x0062001, 0x0063358, 0x0063401, 0x0063424, 0x006bfc1, 0x006bfd0, 0x006bfd5,
    0x006bff0, 0x006bff5, 0x006bffc, 0x006c001, 0x006c48c, 0x006c4c9, 0x006c4cc, 0x006c541,
    0x006c54c, 0x006c555, 0x006c558, 0x006c591, 0x006c5a0, 0x006c5c1, 0x006cbf0, 0x006f001,
    0x006f1ac, 0x006f1c1, 0x006f1f4, 0x006f201, 0x006f224, 0x006f241, 0x006f268, 0x006f27f,
    0x006f280, 0x0074b02, 0x0074b50, 0x0074b82, 0x0074bd0, 0x0074d82, 0x0074de4, 0x0075001,
    0x0075154, 0x0075159, 0x0075274, 0x0075279, 0x0075280, 0x0075289, 0x007528c, 0x0075295,
    0x007529c, 0x00752a5, 0x00752b4, 0x00752b9, 0x00752e8, 0x00752ed, 0x00752f0, 0x00752f5,
    0x0075310, 0x0075315, 0x0075418, 0x007541d, 0x007542c, 0x0075435, 0x0075454, 0x0075459,
    0x0075474, 0x0075479, 0x00754e8, 0x00754ed, 0x00754fc, 0x0075501, 0x0075514, 0x0075519,
    0x007551c, 0x0075529, 0x0075544, 0x0075549, 0x0075a98, 0x0075aa1, 0x0075b04, 0x0075b09,
    0x0075b6c, 0x0075b71, 0x0075bec, 0x0075bf1, 0x0075c54, 0x0075c59, 0x0075cd4, 0x0075cd9,
    0x0075d3c, 0x0075d41, 0x0075dbc, 0x0075dc1, 0x0075e24, 0x0075e29, 0x0075ea4, 0x0075ea9,
    0x0075f0c, 0x0075f11, 0x0075f30, 0x0075f3a, 0x0076000, 0x0076a1f, 0x0076a30, 0x0077c01,
    0x0077c7c, 0x0077c95, 0x0077cac, 0x00780c1, 0x00781b8, 0x0078401, 0x00784b4, 0x00784dd,
    0x00784f8, 0x0078502, 0x0078528, 0x0078539, 0x007853c, 0x0078a41, 0x0078ab8, 0x0078b01,
    0x0078bb0, 0x0078bc2, 0x0078be8, 0x0079341, 0x00793b0, 0x00793c2, 0x00793e8, 0x0079f81,
    0x0079f9c, 0x0079fa1, 0x0079fb0, 0x0079fb5, 0x0079fbc, 0x0079fc1, 0x0079ffc, 0x007a001,
    0x007a314, 0x007a31e, 0x007a340, 0x007a401, 0x007a510, 0x007a52d, 0x007a530, 0x007a542,
    0x007a568, 0x007a57b, 0x007a580, 0x007b1c6, 0x007b2b0, 0x007b2b6, 0x007b2c0, 0x007b2c6,
    0x007b2d4, 0x007b406, 0x007b4b8, 0x007b4be, 0x007b4f8, 0x007b801, 0x007b810, 0x007b815,
    0x007b880, 0x007b885, 0x007b88c, 0x007b891, 0x007b894, 0x007b89d, 0x007b8a0, 0x007b8a5,
    0x007b8cc, 0x007b8d1, 0x007b8e0, 0x007b8e5, 0x007b8e8, 0x007b8ed, 0x007b8f0, 0x007b909,
    0x007b90c, 0x007b91d, 0x007b920, 0x007b925, 0x007b928, 0x007b92d, 0x007b930, 0x007b935,
    0x007b940, 0x007b945, 0x007b94c, 0x007b951, 0x007b954, 0x007b95d, 0x007b960, 0x007b965,
    0x007b968, 0x007b96d, 0x007b970, 0x007b975, 0x007b978, 0x007b97d, 0x007b980, 0x007b985,
    0x007b98c, 0x007b991, 0x007b994, 0x007b99d, 0x007b9ac, 0x007b9b1, 0x007b9cc, 0x007b9d1,
    0x007b9e0, 0x007b9e5, 0x007b9f4, 0x007b9f9, 0x007b9fc, 0x007ba01, 0x007ba28, 0x007ba2d,
    0x007ba70, 0x007ba85, 0x007ba90, 0x007ba95, 0x007baa8, 0x007baad, 0x007baf0, 0x007c402,
    0x007c434, 0x007efc2, 0x007efe8, 0x0080001, 0x00a9b80, 0x00a9c01, 0x00adce8, 0x00add01,
    0x00ae078, 0x00ae081, 0x00b3a88, 0x00b3ac1, 0x00baf84, 0x00bafc1, 0x00bb978, 0x00be001,
    0x00be878, 0x00c0001, 0x00c4d2c, 0x00c4d41, 0x00c8ec0,
};

enum { UC_OTHER = 0, UC_LETTER = 1, UC_NUMBER = 2, UC_PUNCT = 3 };

static unsigned ucd_class(uint32_t cp)
{
    size_t lo = 0, hi = sizeof ucd_runs / sizeof ucd_runs[0];
    while (hi - lo > 1) { /* last run starting at or before cp */
        size_t mid = lo + (hi - lo) / 2;
        if ((ucd_runs[mid] >> 2) <= cp)
            lo = mid;
        else
            hi = mid;
    }
    return ucd_runs[lo] & 3u;
}

static bool ucd_is_space(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20;
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* Per-code-point flags used by the pre-tokenizers. F_ANY marks a code point inside the
 * segment being split: llama.cpp gives positions past the segment no flags at all, and its
 * "[^\s\p{L}\p{N}]" test relies on that to stop at the segment end. */
enum { F_LETTER = 1, F_NUMBER = 2, F_PUNCT = 4, F_SPACE = 8, F_ANY = 16 };

static uint8_t ucd_flags(uint32_t cp)
{
    static const uint8_t by_class[4] = {[UC_OTHER] = 0, [UC_LETTER] = F_LETTER,
                                        [UC_NUMBER] = F_NUMBER, [UC_PUNCT] = F_PUNCT};
    return (uint8_t)(F_ANY | by_class[ucd_class(cp)] | (ucd_is_space(cp) ? F_SPACE : 0));
}

/* Decodes one code point as llama.cpp does: continuation bytes are checked but overlong
 * forms and surrogates are accepted; an invalid sequence is U+FFFD and consumes one byte.
 * Values past U+10FFFF (which make llama.cpp throw) are treated as invalid too. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    const unsigned c = s[0];
    size_t len = c < 0x80 ? 1 : !(c & 0x40) ? 0 : !(c & 0x20) ? 2 : !(c & 0x10) ? 3
                                             : !(c & 0x08) ? 4 : 0;
    if (len == 1) {
        *cp = c;
        return 1;
    }
    if (len == 0 || n < len)
        goto bad;
    uint32_t v = c & (0x7Fu >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            goto bad;
        v = (v << 6) | (s[i] & 0x3Fu);
    }
    if (v > 0x10FFFF)
        goto bad;
    *cp = v;
    return len;
bad:
    *cp = 0xFFFD;
    return 1;
}

static size_t utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the UTF-8 sequence a lead byte announces, without checking the rest: this is
 * how llama.cpp cuts SentencePiece input into symbols (a stray continuation byte is 1). */
static size_t utf8_lead_len(unsigned char c)
{
    static const uint8_t len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len[c >> 4];
}

/* GPT-2's byte-level alphabet: printable Latin-1 bytes stand for themselves, the other 68
 * bytes (0x00-0x20, 0x7F-0xA0, 0xAD) map in order to U+0100.. */
static uint32_t byte_to_cp(unsigned char b)
{
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)
        return b;
    if (b <= 0x20)
        return 256u + b;
    if (b <= 0xA0)
        return 256u + 33 + (b - 0x7Fu);
    return 256u + 67; /* 0xAD */
}

/* The inverse: the byte a code point of the alphabet stands for, or -1. */
static int cp_to_byte(uint32_t cp)
{
    if (cp < 256) {
        bool printable = (cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || cp >= 0xAE;
        return printable ? (int)cp : -1;
    }
    if (cp <= 256 + 32)
        return (int)(cp - 256);
    if (cp <= 256 + 66)
        return (int)(cp - 256 - 33 + 0x7F);
    return cp == 256 + 67 ? 0xAD : -1;
}

/* ------------------------------------------------------------------ growable arrays */

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *np = realloc(*p, c * elem);
    if (!np)
        return false;
    *p = np;
    *cap = c;
    return true;
}

typedef struct bytes {
    char *p;
    size_t n, cap;
} bytes;

static bool bytes_put(bytes *b, const void *s, size_t n)
{
    if (!grow((void **)&b->p, &b->cap, b->n + n, 1))
        return false;
    if (n)
        memcpy(b->p + b->n, s, n);
    b->n += n;
    return true;
}

typedef struct ivec {
    int32_t *p;
    size_t n, cap;
} ivec;

static bool ivec_push(ivec *v, int32_t x)
{
    if (!grow((void **)&v->p, &v->cap, v->n + 1, sizeof *v->p))
        return false;
    v->p[v->n++] = x;
    return true;
}

/* Piece lengths (in code points) of a pre-tokenizer split. Passes reserve room for one
 * piece per code point first, so pushing never fails. */
typedef struct zvec {
    size_t *p;
    size_t n, cap;
} zvec;

static void zvec_add(zvec *v, size_t len)
{
    if (len)
        v->p[v->n++] = len;
}

/* ------------------------------------------------------------------ the tokenizer */

/* llama.cpp's token attributes (one per token, from token_type). */
enum {
    A_UNDEFINED = 0,
    A_UNKNOWN = 1,
    A_UNUSED = 2,
    A_NORMAL = 4,
    A_CONTROL = 8,
    A_USER = 16,
    A_BYTE = 32,
};

enum { KIND_SPM, KIND_BPE };
enum { PRE_NONE, PRE_DEFAULT, PRE_GPT2, PRE_LLAMA3, PRE_QWEN2 };

typedef struct tok_info {
    uint32_t off, len; /* into mlc_tokenizer.text */
    float score;
    uint8_t attr;
    bool eog;
} tok_info;

typedef struct merge {
    uint32_t off, len, left_len; /* "left right" at mtext + off; left_len bytes of left */
} merge;

struct mlc_tokenizer {
    int kind, pre;
    char pre_name[32];
    char *path; /* for messages */
    int32_t n_vocab;
    char *text;
    tok_info *toks;
    uint32_t *slots; /* token text -> id + 1 (0: empty), open addressing */
    uint32_t mask;
    char *mtext;
    merge *merges;
    uint32_t n_merges;
    uint32_t *mslots; /* merge "left right" -> rank + 1 */
    uint32_t mmask;
    int32_t *special; /* control, user-defined, unknown ids, longest text first */
    size_t n_special;
    int32_t byte_tok[256]; /* SentencePiece byte fallback */
    int32_t bos, eos, eot, eom, unk;
    bool add_bos, add_eos, add_space_prefix, ignore_merges, clean_spaces;
};

static uint32_t hash_more(uint32_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) /* FNV-1a */
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

#define HASH_SEED 2166136261u

static uint32_t table_mask(size_t n)
{
    size_t c = 16;
    while (c < 2 * n)
        c *= 2;
    return (uint32_t)(c - 1);
}

int32_t mlc_tokenizer_find(const mlc_tokenizer *t, const char *s, size_t n)
{
    if (!t || (!s && n))
        return -1;
    for (uint32_t i = hash_more(HASH_SEED, s, n) & t->mask; t->slots[i]; i = (i + 1) & t->mask) {
        const tok_info *e = &t->toks[t->slots[i] - 1];
        if (e->len == n && !memcmp(t->text + e->off, s, n))
            return (int32_t)(t->slots[i] - 1);
    }
    return -1;
}

/* Rank of the merge "l r", or -1. The key is hashed in pieces so the pair need not be
 * copied next to each other. */
static int32_t merge_rank(const mlc_tokenizer *t, const char *l, size_t ln, const char *r,
                          size_t rn)
{
    uint32_t h = hash_more(hash_more(hash_more(HASH_SEED, l, ln), " ", 1), r, rn);
    for (uint32_t i = h & t->mmask; t->mslots[i]; i = (i + 1) & t->mmask) {
        const merge *m = &t->merges[t->mslots[i] - 1];
        const char *s = t->mtext + m->off;
        if (m->left_len == ln && m->len == ln + 1 + rn && !memcmp(s, l, ln) &&
            !memcmp(s + ln + 1, r, rn))
            return (int32_t)(t->mslots[i] - 1);
    }
    return -1;
}

void mlc_tokenizer_free(mlc_tokenizer *t)
{
    if (!t)
        return;
    free(t->path);
    free(t->text);
    free(t->toks);
    free(t->slots);
    free(t->mtext);
    free(t->merges);
    free(t->mslots);
    free(t->special);
    free(t);
}

/* ------------------------------------------------------------------ loading */

#define K_MODEL "tokenizer.ggml.model"
#define K_PRE "tokenizer.ggml.pre"
#define K_TOKENS "tokenizer.ggml.tokens"
#define K_SCORES "tokenizer.ggml.scores"
#define K_TYPES "tokenizer.ggml.token_type"
#define K_MERGES "tokenizer.ggml.merges"

/* Printable, one-line rendering of a token text for messages. */
static const char *quoted(char *buf, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7F && c != '\\')
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02X", c);
    }
    buf[o] = 0;
    return buf;
}

static bool str_is(mlc_gguf_str s, const char *z)
{
    return s.len == strlen(z) && !memcmp(s.ptr, z, s.len);
}

static bool name_in(mlc_gguf_str s, const char *const *names)
{
    for (; *names; names++)
        if (str_is(s, *names))
            return true;
    return false;
}

/* Pre-tokenizer names llama.cpp maps to the regexes implemented here. Others (deepseek,
 * falcon, starcoder, ...) use regexes we do not have and are refused rather than guessed. */
static mlc_status load_pre(mlc_tokenizer *t, const mlc_gguf *g, mlc_err *err)
{
    static const char *const gpt2[] = {"gpt-2", "phi-2", "mpt", "olmo", NULL};
    static const char *const llama3[] = {"llama3", "llama-v3", "llama-bpe", "falcon3", NULL};
    static const char *const qwen2[] = {"qwen2", "deepseek-r1-qwen", NULL};
    mlc_gguf_str s = {"default", 7};
    mlc_status st = mlc_gguf_get_str(g, K_PRE, &s, err);
    if (st == MLC_ERR_NOT_FOUND)
        s = (mlc_gguf_str){"default", 7};
    else if (st)
        return st;
    char q[96];
    if (str_is(s, "default"))
        t->pre = PRE_DEFAULT;
    else if (name_in(s, gpt2))
        t->pre = PRE_GPT2;
    else if (name_in(s, llama3))
        t->pre = PRE_LLAMA3;
    else if (name_in(s, qwen2))
        t->pre = PRE_QWEN2;
    else
        return mlc_err_set(err, MLC_ERR_UNSUPPORTED,
                           "%s: key '%s': unsupported pre-tokenizer '%s' (supported: default, "
                           "gpt-2, llama3, qwen2 and their aliases)",
                           t->path, K_PRE, quoted(q, 64, s.ptr, (size_t)s.len));
    quoted(t->pre_name, sizeof t->pre_name, s.ptr, (size_t)s.len);
    return MLC_OK;
}

static mlc_status load_model(mlc_tokenizer *t, const mlc_gguf *g, mlc_err *err)
{
    mlc_gguf_str s;
    mlc_status st = mlc_gguf_get_str(g, K_MODEL, &s, err);
    if (st)
        return st;
    char q[64];
    if (str_is(s, "llama")) {
        t->kind = KIND_SPM;
        t->pre = PRE_NONE;
        return MLC_OK;
    }
    if (str_is(s, "gpt2")) {
        t->kind = KIND_BPE;
        return load_pre(t, g, err);
    }
    return mlc_err_set(err, MLC_ERR_UNSUPPORTED,
                       "%s: key '%s': unsupported tokenizer model '%s' (supported: llama, gpt2)",
                       t->path, K_MODEL, quoted(q, sizeof q, s.ptr, (size_t)s.len));
}

/* Token text i; llama.cpp renames empty tokens to "[EMPTY_i]" (with a warning). */
static size_t token_text(const mlc_gguf_value *v, uint64_t i, const char **p, char tmp[32])
{
    mlc_gguf_str s = mlc_gguf_arr_str(v, i);
    if (s.len) {
        *p = s.ptr;
        return (size_t)s.len;
    }
    *p = tmp;
    return (size_t)snprintf(tmp, 32, "[EMPTY_%llu]", (unsigned long long)i);
}

static mlc_status index_tokens(mlc_tokenizer *t, mlc_err *err)
{
    t->mask = table_mask((size_t)t->n_vocab);
    t->slots = calloc((size_t)t->mask + 1, sizeof *t->slots);
    if (!t->slots)
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: tokenizer: out of memory", t->path);
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const tok_info *e = &t->toks[id];
        const char *s = t->text + e->off;
        uint32_t i = hash_more(HASH_SEED, s, e->len) & t->mask;
        for (; t->slots[i]; i = (i + 1) & t->mask) {
            const tok_info *o = &t->toks[t->slots[i] - 1];
            char q[96];
            if (o->len == e->len && !memcmp(t->text + o->off, s, e->len))
                /* llama.cpp asserts on this: ids would not round-trip. */
                return mlc_err_set(err, MLC_ERR_FORMAT,
                                   "%s: key '%s': token %d '%s' duplicates token %u", t->path,
                                   K_TOKENS, id, quoted(q, 64, s, e->len), t->slots[i] - 1);
        }
        t->slots[i] = (uint32_t)id + 1;
    }
    return MLC_OK;
}

static mlc_status load_tokens(mlc_tokenizer *t, const mlc_gguf *g, mlc_err *err)
{
    const mlc_gguf_value *v;
    mlc_status st = mlc_gguf_get_arr(g, K_TOKENS, MLC_GGUF_STRING, &v, err);
    if (st)
        return st;
    if (v->arr.n == 0 || v->arr.n > INT32_MAX)
        return mlc_err_set(err, MLC_ERR_FORMAT, "%s: key '%s': %llu tokens", t->path, K_TOKENS,
                           (unsigned long long)v->arr.n);
    t->n_vocab = (int32_t)v->arr.n;
    uint64_t total = 0;
    char tmp[32];
    const char *p;
    for (uint64_t i = 0; i < v->arr.n; i++)
        total += token_text(v, i, &p, tmp);
    if (total > UINT32_MAX)
        return mlc_err_set(err, MLC_ERR_FORMAT, "%s: key '%s': token texts too large", t->path,
                           K_TOKENS);
    t->text = malloc(total ? (size_t)total : 1);
    t->toks = calloc(v->arr.n, sizeof *t->toks);
    if (!t->text || !t->toks)
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: tokenizer: out of memory", t->path);
    uint32_t off = 0;
    for (uint64_t i = 0; i < v->arr.n; i++) {
        size_t n = token_text(v, i, &p, tmp);
        memcpy(t->text + off, p, n);
        t->toks[i] = (tok_info){.off = off, .len = (uint32_t)n, .attr = A_NORMAL};
        off += (uint32_t)n;
    }
    return index_tokens(t, err);
}

/* An optional per-token numeric array: NULL *out when absent. */
static mlc_status token_array(mlc_tokenizer *t, const mlc_gguf *g, const char *key, bool integer,
                              const mlc_gguf_value **out, mlc_err *err)
{
    mlc_status st = mlc_gguf_get_arr(g, key, MLC_GGUF_VTYPE_COUNT, out, err);
    if (st == MLC_ERR_NOT_FOUND) {
        *out = NULL;
        return MLC_OK;
    }
    if (st)
        return st;
    mlc_gguf_vtype et = (*out)->arr.type;
    bool is_float = et == MLC_GGUF_FLOAT32 || et == MLC_GGUF_FLOAT64;
    bool is_int = et <= MLC_GGUF_INT32 || et == MLC_GGUF_UINT64 || et == MLC_GGUF_INT64;
    if (!(is_int || (!integer && is_float)))
        return mlc_err_set(err, MLC_ERR_TYPE,
                           "%s: key '%s': expected array of %s, found array of %s", t->path, key,
                           integer ? "integers" : "numbers", mlc_gguf_vtype_name(et));
    if ((*out)->arr.n != (uint64_t)t->n_vocab)
        return mlc_err_set(err, MLC_ERR_FORMAT, "%s: key '%s': %llu entries for %d tokens",
                           t->path, key, (unsigned long long)(*out)->arr.n, t->n_vocab);
    return MLC_OK;
}

static uint8_t attr_of_type(int64_t type)
{
    switch (type) {
    case MLC_TOKEN_NORMAL: return A_NORMAL;
    case MLC_TOKEN_UNKNOWN: return A_UNKNOWN;
    case MLC_TOKEN_CONTROL: return A_CONTROL;
    case MLC_TOKEN_USER_DEFINED: return A_USER;
    case MLC_TOKEN_UNUSED: return A_UNUSED;
    case MLC_TOKEN_BYTE: return A_BYTE;
    default: return A_UNDEFINED;
    }
}

static mlc_status load_scores_types(mlc_tokenizer *t, const mlc_gguf *g, mlc_err *err)
{
    const mlc_gguf_value *scores, *types;
    mlc_status st = token_array(t, g, K_SCORES, false, &scores, err);
    if (!st)
        st = token_array(t, g, K_TYPES, true, &types, err);
    if (st)
        return st;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if (scores)
            t->toks[i].score = (float)mlc_gguf_arr_f64(scores, (uint64_t)i);
        if (types)
            t->toks[i].attr = attr_of_type(mlc_gguf_arr_i64(types, (uint64_t)i));
    }
    return MLC_OK;
}

/* Merges are "left right", split at the first space after the first byte (so a left part
 * that is itself a space still works, as in llama.cpp). The first of duplicates wins. */
static mlc_status parse_merge(mlc_tokenizer *t, const mlc_gguf_value *v, uint64_t i, uint32_t off,
                              mlc_err *err)
{
    mlc_gguf_str s = mlc_gguf_arr_str(v, i);
    const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', (size_t)s.len - 1) : NULL;
    if (!sp || (uint64_t)(sp - s.ptr) + 1 == s.len) {
        char q[96];
        return mlc_err_set(err, MLC_ERR_FORMAT,
                           "%s: key '%s': merge %llu '%s' is not \"left right\"", t->path,
                           K_MERGES, (unsigned long long)i, quoted(q, 64, s.ptr, (size_t)s.len));
    }
    memcpy(t->mtext + off, s.ptr, (size_t)s.len);
    t->merges[i] = (merge){off, (uint32_t)s.len, (uint32_t)(sp - s.ptr)};
    return MLC_OK;
}

static void index_merge(mlc_tokenizer *t, uint32_t rank)
{
    const merge *m = &t->merges[rank];
    const char *s = t->mtext + m->off;
    if (merge_rank(t, s, m->left_len, s + m->left_len + 1, m->len - m->left_len - 1) >= 0)
        return;
    uint32_t i = hash_more(HASH_SEED, s, m->len) & t->mmask;
    while (t->mslots[i])
        i = (i + 1) & t->mmask;
    t->mslots[i] = rank + 1;
}

static mlc_status load_merges(mlc_tokenizer *t, const mlc_gguf *g, mlc_err *err)
{
    const mlc_gguf_value *v;
    mlc_status st = mlc_gguf_get_arr(g, K_MERGES, MLC_GGUF_STRING, &v, err);
    if (st)
        return st;
    uint64_t total = 0;
    for (uint64_t i = 0; i < v->arr.n; i++)
        total += mlc_gguf_arr_str(v, i).len;
    if (v->arr.n >= INT32_MAX || total > UINT32_MAX)
        return mlc_err_set(err, MLC_ERR_FORMAT, "%s: key '%s': too many merges", t->path,
                           K_MERGES);
    t->n_merges = (uint32_t)v->arr.n;
    t->mmask = table_mask(t->n_merges);
    t->mtext = malloc(total ? (size_t)total : 1);
    t->merges = calloc(t->n_merges ? t->n_merges : 1, sizeof *t->merges);
    t->mslots = calloc((size_t)t->mmask + 1, sizeof *t->mslots);
    if (!t->mtext || !t->merges || !t->mslots)
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: tokenizer: out of memory", t->path);
    uint32_t off = 0;
    for (uint32_t i = 0; i < t->n_merges; i++) {
        if ((st = parse_merge(t, v, i, off, err)))
            return st;
        off += t->merges[i].len;
        index_merge(t, i);
    }
    return MLC_OK;
}

/* A token id key: absent keeps *id; present must name a token (llama.cpp only warns and
 * keeps its default, but a file that points outside its vocabulary is broken). */
static mlc_status load_id(mlc_tokenizer *t, const mlc_gguf *g, const char *key, int32_t *id,
                          mlc_err *err)
{
    uint32_t v;
    mlc_status st = mlc_gguf_get_u32(g, key, &v, err);
    if (st == MLC_ERR_NOT_FOUND)
        return MLC_OK;
    if (st)
        return st;
    if (v >= (uint32_t)t->n_vocab)
        return mlc_err_set(err, MLC_ERR_RANGE,
                           "%s: key '%s': token id %u out of range (vocabulary of %d tokens)",
                           t->path, key, v, t->n_vocab);
    *id = (int32_t)v;
    return MLC_OK;
}

static mlc_status load_bool(const mlc_gguf *g, const char *key, bool *out, mlc_err *err)
{
    mlc_status st = mlc_gguf_get_bool(g, key, out, err);
    return st == MLC_ERR_NOT_FOUND ? MLC_OK : st;
}

static int32_t id_or_none(const mlc_tokenizer *t, int32_t id)
{
    return id < t->n_vocab ? id : -1;
}

/* llama.cpp's defaults: SentencePiece has <unk>=0 <s>=1 </s>=2, adds BOS and a space
 * prefix; BPE has BOS = EOS = 11 (sic), adds neither, and cleans spaces when detokenizing
 * except for qwen2; llama3 adds BOS and skips merging words that are whole tokens. */
static void set_defaults(mlc_tokenizer *t)
{
    bool spm = t->kind == KIND_SPM;
    t->bos = id_or_none(t, spm ? 1 : 11);
    t->eos = id_or_none(t, spm ? 2 : 11);
    t->unk = spm ? id_or_none(t, 0) : -1;
    t->eot = t->eom = -1;
    t->add_bos = spm || t->pre == PRE_LLAMA3;
    t->add_eos = false;
    t->add_space_prefix = spm;
    t->clean_spaces = !spm && t->pre != PRE_QWEN2;
    t->ignore_merges = t->pre == PRE_LLAMA3;
}

static mlc_status load_specials(mlc_tokenizer *t, const mlc_gguf *g, mlc_err *err)
{
    set_defaults(t);
    mlc_status st = load_id(t, g, "tokenizer.ggml.bos_token_id", &t->bos, err);
    if (!st)
        st = load_id(t, g, "tokenizer.ggml.eos_token_id", &t->eos, err);
    if (!st)
        st = load_id(t, g, "tokenizer.ggml.eot_token_id", &t->eot, err);
    if (!st)
        st = load_id(t, g, "tokenizer.ggml.eom_token_id", &t->eom, err);
    if (!st)
        st = load_id(t, g, "tokenizer.ggml.unknown_token_id", &t->unk, err);
    if (!st)
        st = load_bool(g, "tokenizer.ggml.add_bos_token", &t->add_bos, err);
    if (!st)
        st = load_bool(g, "tokenizer.ggml.add_eos_token", &t->add_eos, err);
    if (!st)
        st = load_bool(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, err);
    return st;
}

/* Lowest id among tokens with one of these texts, or -1. */
static int32_t find_any(const mlc_tokenizer *t, const char *const *texts)
{
    int32_t best = -1;
    for (; *texts; texts++) {
        int32_t id = mlc_tokenizer_find(t, *texts, strlen(*texts));
        if (id >= 0 && (best < 0 || id < best))
            best = id;
    }
    return best;
}

/* A token recognised as end of generation; like llama.cpp, one that was not typed control
 * becomes control (so it is hidden from output and parsed only with parse_special). */
static void mark_eog(mlc_tokenizer *t, int32_t id, bool make_control)
{
    if (id < 0)
        return;
    t->toks[id].eog = true;
    if (make_control)
        t->toks[id].attr = A_CONTROL;
}

/* End-of-generation tokens as llama.cpp finds them: ids from the file, then well-known
 * texts (the file rarely names EOT/EOM/FIM ids). */
static mlc_status detect_eog(mlc_tokenizer *t, const mlc_gguf *g, mlc_err *err)
{
    /* DeepSeek's is <｜end▁of▁sentence｜> (fullwidth bars, U+2581 for spaces). */
    static const char *const eot[] = {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>",
        "_<EOT>", "<\xEF\xBD\234end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
        "<end_of_utterance>", NULL};
    static const char *const eom[] = {"<|eom_id|>", NULL};
    static const char *const eog[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>",
                                      "<|call|>", "<end_of_turn>", "<|endoftext|>",
                                      "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>",
                                      "<end_of_utterance>", NULL};
    static const char *const fim_pad[] = {"<|fim_pad|>", "<fim-pad>", "<PAD>", NULL};
    static const char *const fim_rep[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                                          "<REPO>", NULL};
    static const char *const fim_sep[] = {"<|file_sep|>", NULL};
    int32_t pad = -1, rep = -1, sep = -1;
    mlc_status st = load_id(t, g, "tokenizer.ggml.fim_pad_token_id", &pad, err);
    if (!st)
        st = load_id(t, g, "tokenizer.ggml.fim_rep_token_id", &rep, err);
    if (!st)
        st = load_id(t, g, "tokenizer.ggml.fim_sep_token_id", &sep, err);
    if (st)
        return st;
    /* Ids from the file keep their type: llama.cpp only adds them to the set. */
    if (t->eot < 0)
        mark_eog(t, t->eot = find_any(t, eot), true);
    if (t->eom < 0)
        mark_eog(t, t->eom = find_any(t, eom), true);
    mark_eog(t, pad < 0 ? find_any(t, fim_pad) : pad, pad < 0);
    mark_eog(t, rep < 0 ? find_any(t, fim_rep) : rep, rep < 0);
    mark_eog(t, sep < 0 ? find_any(t, fim_sep) : sep, sep < 0);
    for (const char *const *s = eog; *s; s++)
        mark_eog(t, mlc_tokenizer_find(t, *s, strlen(*s)), true);
    mark_eog(t, t->eos, false);
    mark_eog(t, t->eot, false);
    mark_eog(t, t->eom, false);
    return MLC_OK;
}

typedef struct len_id {
    uint32_t len;
    int32_t id;
} len_id;

static int by_len_desc(const void *a, const void *b)
{
    const len_id *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Tokens matched in the raw text before tokenizing, longest first (llama.cpp sorts by
 * length only; equal lengths go by id here so the order is deterministic). */
static mlc_status build_specials(mlc_tokenizer *t, mlc_err *err)
{
    size_t n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        n += (t->toks[i].attr & (A_CONTROL | A_USER | A_UNKNOWN)) != 0;
    len_id *v = malloc((n ? n : 1) * sizeof *v);
    t->special = malloc((n ? n : 1) * sizeof *t->special);
    if (!v || !t->special) {
        free(v);
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: tokenizer: out of memory", t->path);
    }
    n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->toks[i].attr & (A_CONTROL | A_USER | A_UNKNOWN))
            v[n++] = (len_id){t->toks[i].len, i};
    qsort(v, n, sizeof *v, by_len_desc);
    for (size_t i = 0; i < n; i++)
        t->special[i] = v[i].id;
    t->n_special = n;
    free(v);
    return MLC_OK;
}

/* SentencePiece byte fallback: <0xXX>, else the byte itself as a token (llama.cpp's
 * order), else none. */
static void build_byte_tokens(mlc_tokenizer *t)
{
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        int32_t id = mlc_tokenizer_find(t, name, 6);
        if (id < 0) {
            char c = (char)b;
            id = mlc_tokenizer_find(t, &c, 1);
        }
        t->byte_tok[b] = id;
    }
}

mlc_status mlc_tokenizer_load(const mlc_gguf *g, mlc_tokenizer **out, mlc_err *err)
{
    if (!out)
        return mlc_err_set(err, MLC_ERR_ARG, "mlc_tokenizer_load: NULL out");
    *out = NULL;
    if (!g)
        return mlc_err_set(err, MLC_ERR_ARG, "mlc_tokenizer_load: NULL gguf");
    mlc_tokenizer *t = calloc(1, sizeof *t);
    const char *path = mlc_gguf_path(g) ? mlc_gguf_path(g) : "(gguf)";
    if (!t || !(t->path = strdup(path))) {
        free(t);
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: tokenizer: out of memory", path);
    }
    mlc_status st = load_model(t, g, err);
    if (!st)
        st = load_tokens(t, g, err);
    if (!st)
        st = load_scores_types(t, g, err);
    if (!st && t->kind == KIND_BPE)
        st = load_merges(t, g, err);
    if (!st)
        st = load_specials(t, g, err);
    if (!st)
        st = detect_eog(t, g, err);
    if (!st)
        st = build_specials(t, err);
    if (st) {
        mlc_tokenizer_free(t);
        return st;
    }
    build_byte_tokens(t);
    *out = t;
    return MLC_OK;
}

/* ------------------------------------------------------------------ accessors */

int32_t mlc_tokenizer_n_vocab(const mlc_tokenizer *t) { return t ? t->n_vocab : 0; }
int32_t mlc_tokenizer_bos(const mlc_tokenizer *t) { return t ? t->bos : -1; }
int32_t mlc_tokenizer_eos(const mlc_tokenizer *t) { return t ? t->eos : -1; }
int32_t mlc_tokenizer_eot(const mlc_tokenizer *t) { return t ? t->eot : -1; }
int32_t mlc_tokenizer_unk(const mlc_tokenizer *t) { return t ? t->unk : -1; }
bool mlc_tokenizer_add_bos(const mlc_tokenizer *t) { return t && t->add_bos; }
bool mlc_tokenizer_add_eos(const mlc_tokenizer *t) { return t && t->add_eos; }

const char *mlc_tokenizer_model(const mlc_tokenizer *t)
{
    return !t ? "" : t->kind == KIND_SPM ? "llama" : "gpt2";
}

const char *mlc_tokenizer_pre(const mlc_tokenizer *t)
{
    return t ? t->pre_name : "";
}

static bool valid_id(const mlc_tokenizer *t, int32_t id)
{
    return t && id >= 0 && id < t->n_vocab;
}

bool mlc_tokenizer_is_eog(const mlc_tokenizer *t, int32_t id)
{
    return valid_id(t, id) && t->toks[id].eog;
}

const char *mlc_tokenizer_token_text(const mlc_tokenizer *t, int32_t id, size_t *len)
{
    if (!valid_id(t, id))
        return NULL;
    if (len)
        *len = t->toks[id].len;
    return t->text + t->toks[id].off;
}

mlc_token_type mlc_tokenizer_token_type(const mlc_tokenizer *t, int32_t id)
{
    if (!valid_id(t, id))
        return MLC_TOKEN_UNDEFINED;
    switch (t->toks[id].attr) {
    case A_NORMAL: return MLC_TOKEN_NORMAL;
    case A_UNKNOWN: return MLC_TOKEN_UNKNOWN;
    case A_CONTROL: return MLC_TOKEN_CONTROL;
    case A_USER: return MLC_TOKEN_USER_DEFINED;
    case A_UNUSED: return MLC_TOKEN_UNUSED;
    case A_BYTE: return MLC_TOKEN_BYTE;
    default: return MLC_TOKEN_UNDEFINED;
    }
}

/* ------------------------------------------------------------------ special tokens in text */

/* A run of the input: raw text (tok < 0) or a token already decided. */
typedef struct frag {
    int32_t tok;
    size_t off, len;
} frag;

typedef struct fragvec {
    frag *p;
    size_t n, cap;
} fragvec;

static bool frag_push(fragvec *v, int32_t tok, size_t off, size_t len)
{
    if (!grow((void **)&v->p, &v->cap, v->n + 1, sizeof *v->p))
        return false;
    v->p[v->n++] = (frag){tok, off, len};
    return true;
}

static const char *find_bytes(const char *hay, size_t hn, const char *needle, size_t nn)
{
    if (nn == 0 || nn > hn)
        return NULL;
    const char *last = hay + (hn - nn);
    for (const char *p = hay; p <= last; p++) {
        p = memchr(p, needle[0], (size_t)(last - p) + 1);
        if (!p)
            return NULL;
        if (!memcmp(p, needle, nn))
            return p;
    }
    return NULL;
}

/* Cuts every raw fragment of `in` at the occurrences (leftmost, not overlapping) of token
 * id's text, into `out`. */
static bool split_on(const mlc_tokenizer *t, int32_t id, const char *text, const fragvec *in,
                     fragvec *out)
{
    const char *s = t->text + t->toks[id].off;
    const size_t n = t->toks[id].len;
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        frag f = in->p[i];
        if (f.tok >= 0) {
            if (!frag_push(out, f.tok, 0, 0))
                return false;
            continue;
        }
        size_t cur = f.off, end = f.off + f.len;
        const char *m;
        while ((m = find_bytes(text + cur, end - cur, s, n))) {
            size_t at = (size_t)(m - text);
            if ((at > cur && !frag_push(out, -1, cur, at - cur)) || !frag_push(out, id, 0, 0))
                return false;
            cur = at + n;
        }
        if (cur < end && !frag_push(out, -1, cur, end - cur))
            return false;
    }
    return true;
}

/* llama.cpp's tokenizer_st_partition: special token texts are cut out of the input before
 * tokenizing, longest first. Control and unknown tokens only with parse_special;
 * user-defined tokens always (as Hugging Face tokenizers do with added tokens). */
static bool partition(const mlc_tokenizer *t, const char *text, size_t len, bool parse_special,
                      fragvec *frags)
{
    fragvec tmp = {0};
    frags->n = 0;
    if (len && !frag_push(frags, -1, 0, len))
        return false;
    for (size_t k = 0; k < t->n_special && frags->n; k++) {
        int32_t id = t->special[k];
        if (!parse_special && (t->toks[id].attr & (A_CONTROL | A_UNKNOWN)))
            continue;
        if (!split_on(t, id, text, frags, &tmp)) {
            free(tmp.p);
            return false;
        }
        fragvec sw = *frags;
        *frags = tmp;
        tmp = sw;
    }
    free(tmp.p);
    return true;
}

/* ------------------------------------------------------------------ merge queue */

/* Symbols of one word: a doubly linked list over a byte buffer; merging grows the left
 * symbol and empties the right one. */
typedef struct sym {
    int32_t prev, next;
    size_t off, n;
} sym;

/* A candidate merge of two neighbours. Higher prio first (SentencePiece: score of the merged
 * piece; BPE: minus the merge rank), then the leftmost, as llama.cpp's priority queues. */
typedef struct bigram {
    double prio;
    int32_t left, right;
    size_t size;
} bigram;

typedef struct heap {
    bigram *p;
    size_t n, cap;
} heap;

static bool before(const bigram *a, const bigram *b)
{
    return a->prio > b->prio || (a->prio == b->prio && a->left < b->left);
}

static bool heap_push(heap *h, bigram b)
{
    if (!grow((void **)&h->p, &h->cap, h->n + 1, sizeof *h->p))
        return false;
    size_t i = h->n++;
    while (i > 0 && before(&b, &h->p[(i - 1) / 2])) {
        h->p[i] = h->p[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->p[i] = b;
    return true;
}

static bigram heap_pop(heap *h)
{
    bigram top = h->p[0], last = h->p[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && before(&h->p[c + 1], &h->p[c]))
            c++;
        if (!before(&h->p[c], &last))
            break;
        h->p[i] = h->p[c];
        i = c;
    }
    if (h->n)
        h->p[i] = last;
    return top;
}

/* Scratch of one mlc_tokenize call. */
typedef struct work {
    const mlc_tokenizer *t;
    bytes buf;        /* the word or fragment being merged */
    sym *syms;
    size_t n_syms, cap_syms;
    heap q;
    uint32_t *cps;    /* BPE: code points of the fragment and their F_* flags */
    uint8_t *fl;
    size_t n_cps, cap_cps, cap_fl;
    zvec offs, offs2; /* BPE: pre-tokenizer pieces */
    ivec out;
} work;

static void work_free(work *w)
{
    free(w->buf.p);
    free(w->syms);
    free(w->q.p);
    free(w->cps);
    free(w->fl);
    free(w->offs.p);
    free(w->offs2.p);
    free(w->out.p);
}

/* Splits w->buf into symbols of lead-byte length (clipped at the end). */
static bool make_syms(work *w)
{
    w->n_syms = 0;
    for (size_t off = 0; off < w->buf.n;) {
        size_t n = utf8_lead_len((unsigned char)w->buf.p[off]);
        if (n > w->buf.n - off)
            n = w->buf.n - off;
        if (!grow((void **)&w->syms, &w->cap_syms, w->n_syms + 1, sizeof *w->syms))
            return false;
        int32_t i = (int32_t)w->n_syms++;
        w->syms[i] = (sym){i - 1, off + n == w->buf.n ? -1 : i + 1, off, n};
        off += n;
    }
    return true;
}

typedef bool (*pair_fn)(work *w, int32_t left, int32_t right);

/* Runs the queue to the end: pops the best candidate, drops it if either side has changed
 * since it was queued, else merges and queues the new neighbours. */
static bool run_merges(work *w, pair_fn add)
{
    w->q.n = 0;
    for (size_t i = 1; i < w->n_syms; i++)
        if (!add(w, (int32_t)i - 1, (int32_t)i))
            return false;
    while (w->q.n) {
        bigram b = heap_pop(&w->q);
        sym *l = &w->syms[b.left], *r = &w->syms[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            w->syms[r->next].prev = b.left;
        if ((l->prev >= 0 && !add(w, l->prev, b.left)) ||
            (l->next >= 0 && !add(w, b.left, l->next)))
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------ SentencePiece */

static bool spm_pair(work *w, int32_t left, int32_t right)
{
    const sym *l = &w->syms[left], *r = &w->syms[right];
    int32_t id = mlc_tokenizer_find(w->t, w->buf.p + l->off, l->n + r->n);
    if (id < 0)
        return true;
    return heap_push(&w->q, (bigram){w->t->toks[id].score, left, right, l->n + r->n});
}

/* A final symbol: its token, or its bytes as byte tokens (<unk> when a byte has none,
 * where llama.cpp would throw). */
static mlc_status spm_emit(work *w, const sym *s, mlc_err *err)
{
    const mlc_tokenizer *t = w->t;
    int32_t id = mlc_tokenizer_find(t, w->buf.p + s->off, s->n);
    if (id >= 0)
        return ivec_push(&w->out, id) ? MLC_OK : MLC_ERR_NOMEM;
    for (size_t i = 0; i < s->n; i++) {
        unsigned char b = (unsigned char)w->buf.p[s->off + i];
        id = t->byte_tok[b] >= 0 ? t->byte_tok[b] : t->unk;
        if (id < 0)
            return mlc_err_set(err, MLC_ERR_UNSUPPORTED,
                               "%s: tokenizer: no token for byte 0x%02X and no unknown token",
                               t->path, b);
        if (!ivec_push(&w->out, id))
            return MLC_ERR_NOMEM;
    }
    return MLC_OK;
}

/* One raw fragment: spaces become U+2581 (and one is prefixed when asked), then pieces are
 * merged bottom-up from single characters. */
static mlc_status spm_fragment(work *w, const char *s, size_t n, bool prefix, mlc_err *err)
{
    static const char lower_block[3] = {'\xE2', '\x96', '\x81'};
    w->buf.n = 0;
    if (prefix && !bytes_put(&w->buf, lower_block, 3))
        return MLC_ERR_NOMEM;
    for (size_t i = 0; i < n;) {
        const char *sp = memchr(s + i, ' ', n - i);
        size_t run = sp ? (size_t)(sp - (s + i)) : n - i;
        if (!bytes_put(&w->buf, s + i, run) || (sp && !bytes_put(&w->buf, lower_block, 3)))
            return MLC_ERR_NOMEM;
        i += run + (sp != NULL);
    }
    if (!make_syms(w) || !run_merges(w, spm_pair))
        return MLC_ERR_NOMEM;
    for (int32_t i = 0; i != -1; i = w->syms[i].next) {
        mlc_status st = spm_emit(w, &w->syms[i], err);
        if (st)
            return st;
    }
    return MLC_OK;
}

/* ------------------------------------------------------------------ pre-tokenizers */

/* Each pass refines w->offs (piece lengths in code points) into w->offs2, then swaps, as
 * llama.cpp applies its regexes one after the other. The hand-written passes follow
 * llama.cpp's own hand-written versions of the GPT-2 and Llama 3 regexes, which is where
 * its behaviour is defined (e.g. at a piece end). */

typedef struct seg {
    const uint32_t *cp;
    const uint8_t *fl;
    size_t end;
} seg;

static uint8_t fl_at(const seg *s, size_t pos) { return pos < s->end ? s->fl[pos] : 0; }
static uint32_t cp_at(const seg *s, size_t pos) { return pos < s->end ? s->cp[pos] : 0xFFFFFFFFu; }

static uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* Length of 's 't 're 've 'm 'll 'd at pos (case-insensitively for Llama 3), or 0. */
static size_t contraction(const seg *s, size_t pos, bool fold)
{
    if (cp_at(s, pos) != '\'' || pos + 1 >= s->end)
        return 0;
    uint32_t a = cp_at(s, pos + 1), b = cp_at(s, pos + 2);
    if (fold) {
        a = ascii_lower(a);
        b = ascii_lower(b);
    }
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if (pos + 2 < s->end &&
        ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')))
        return 3;
    return 0;
}

static bool is_other(uint8_t f) { return (f & F_ANY) && !(f & (F_SPACE | F_LETTER | F_NUMBER)); }

/* \s+(?!\S) keeps the last space of a run for the next word; \s+ takes the run at the end. */
static size_t space_run(const seg *s, size_t pos)
{
    size_t n = 0;
    while (fl_at(s, pos + n) & F_SPACE)
        n++;
    if (n > 1 && pos + n < s->end)
        return n - 1;
    return n ? n : 1;
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t gpt2_next(const seg *s, size_t pos)
{
    size_t m = contraction(s, pos, false);
    if (m)
        return m;
    const bool sp = cp_at(s, pos) == ' ';
    const uint8_t f2 = sp ? fl_at(s, pos + 1) : fl_at(s, pos);
    size_t p = pos + sp;
    if (f2 & (F_LETTER | F_NUMBER)) {
        const uint8_t want = f2 & F_LETTER ? F_LETTER : F_NUMBER;
        while (fl_at(s, p) & want)
            p++;
        return p - pos;
    }
    if (is_other(f2)) {
        while (is_other(fl_at(s, p)))
            p++;
        return p - pos;
    }
    return space_run(s, pos);
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}| ?[^\s\p{L}\p{N}]+[\r\n]*|
 * \s*[\r\n]+|\s+(?!\S)|\s+  (D = 3 for Llama 3, 1 for Qwen2). Digits are handled by the
 * caller, which must emit D-digit groups. */
static size_t llama3_next(const seg *s, size_t pos)
{
    size_t m = contraction(s, pos, true);
    if (m)
        return m;
    const uint32_t c = cp_at(s, pos);
    const uint8_t f = fl_at(s, pos);
    if (!(c == '\r' || c == '\n' || (f & F_NUMBER)) &&
        ((f & F_LETTER) || (fl_at(s, pos + 1) & F_LETTER))) {
        size_t p = pos + 1;
        while (fl_at(s, p) & F_LETTER)
            p++;
        return p - pos;
    }
    const uint8_t f2 = c == ' ' ? fl_at(s, pos + 1) : f;
    if (!(f2 & (F_SPACE | F_LETTER | F_NUMBER)) && (f & F_ANY)) {
        size_t p = pos + (c == ' ');
        while (is_other(fl_at(s, p)))
            p++;
        while (cp_at(s, p) == '\r' || cp_at(s, p) == '\n')
            p++;
        return p - pos;
    }
    size_t n = 0, last_nl = 0;
    for (; fl_at(s, pos + n) & F_SPACE; n++)
        if (cp_at(s, pos + n) == '\r' || cp_at(s, pos + n) == '\n')
            last_nl = n + 1;
    return last_nl ? last_nl : space_run(s, pos);
}

static void pass_gpt2(const seg *s, size_t pos, zvec *out)
{
    while (pos < s->end) {
        size_t n = gpt2_next(s, pos);
        zvec_add(out, n);
        pos += n;
    }
}

static void pass_llama3(const seg *s, size_t pos, zvec *out, size_t max_digits)
{
    while (pos < s->end) {
        if (fl_at(s, pos) & F_NUMBER && !contraction(s, pos, true)) {
            size_t p = pos;
            while (fl_at(s, p) & F_NUMBER && p - pos < max_digits)
                p++;
            zvec_add(out, p - pos);
            pos = p;
            continue;
        }
        size_t n = llama3_next(s, pos);
        zvec_add(out, n);
        pos += n;
    }
}

/* Matches of [class]+ and the text between them, as std::regex_iterator splits. */
typedef bool (*cp_pred)(uint32_t cp, uint8_t f);

static void pass_runs(const seg *s, size_t pos, zvec *out, cp_pred match)
{
    size_t gap = pos;
    while (pos < s->end) {
        if (!match(s->cp[pos], s->fl[pos])) {
            pos++;
            continue;
        }
        zvec_add(out, pos - gap);
        size_t p = pos;
        while (p < s->end && match(s->cp[p], s->fl[p]))
            p++;
        zvec_add(out, p - pos);
        gap = pos = p;
    }
    zvec_add(out, pos - gap);
}

static bool is_digit(uint32_t c) { return c >= '0' && c <= '9'; }

/* [0-9][0-9][0-9]: triples of ASCII digits, leftmost first. */
static void pass_digit3(const seg *s, size_t pos, zvec *out)
{
    size_t gap = pos;
    while (pos < s->end) {
        if (pos + 3 <= s->end && is_digit(s->cp[pos]) && is_digit(s->cp[pos + 1]) &&
            is_digit(s->cp[pos + 2])) {
            zvec_add(out, pos - gap);
            zvec_add(out, 3);
            gap = pos += 3;
        } else {
            pos++;
        }
    }
    zvec_add(out, pos - gap);
}

/* The "default" pre-tokenizer's first and third regexes, [\p{P}\$\+<=>\^~\|]+ and \p{N}+,
 * as llama.cpp runs them: on a copy of the text where every non-ASCII code point stands for
 * its category (and non-ASCII white space for \v), so ASCII goes by its own characters. */
static bool punct_like(uint32_t c, uint8_t f)
{
    if (c < 0x80)
        return c > 0x20 && c < 0x7F && !(f & (F_LETTER | F_NUMBER)) && c != '`';
    return (f & F_PUNCT) && !(f & F_SPACE);
}

static bool number_like(uint32_t c, uint8_t f)
{
    return c < 0x80 ? is_digit(c) : (f & F_NUMBER) && !(f & F_SPACE);
}

enum { P_GPT2, P_LLAMA3, P_QWEN2, P_PUNCT, P_NUMBER, P_DIGIT3 };

static bool run_pass(work *w, int pass)
{
    w->offs2.n = 0;
    if (!grow((void **)&w->offs2.p, &w->offs2.cap, w->n_cps + 1, sizeof(size_t)))
        return false;
    size_t start = 0;
    for (size_t i = 0; i < w->offs.n; i++) {
        const seg s = {w->cps, w->fl, start + w->offs.p[i]};
        switch (pass) {
        case P_GPT2: pass_gpt2(&s, start, &w->offs2); break;
        case P_LLAMA3: pass_llama3(&s, start, &w->offs2, 3); break;
        case P_QWEN2: pass_llama3(&s, start, &w->offs2, 1); break;
        case P_PUNCT: pass_runs(&s, start, &w->offs2, punct_like); break;
        case P_NUMBER: pass_runs(&s, start, &w->offs2, number_like); break;
        default: pass_digit3(&s, start, &w->offs2); break;
        }
        start = s.end;
    }
    zvec sw = w->offs;
    w->offs = w->offs2;
    w->offs2 = sw;
    return true;
}

static bool pretokenize(work *w)
{
    static const int passes[][5] = {
        [PRE_DEFAULT] = {P_PUNCT, P_GPT2, P_NUMBER, P_DIGIT3, -1},
        [PRE_GPT2] = {P_GPT2, -1},
        [PRE_LLAMA3] = {P_LLAMA3, -1},
        [PRE_QWEN2] = {P_QWEN2, -1},
    };
    w->offs.n = 0;
    if (!grow((void **)&w->offs.p, &w->offs.cap, w->n_cps + 1, sizeof(size_t)))
        return false;
    w->offs.p[w->offs.n++] = w->n_cps;
    for (const int *p = passes[w->t->pre]; *p >= 0; p++)
        if (!run_pass(w, *p))
            return false;
    return true;
}

/* ------------------------------------------------------------------ byte-level BPE */

static bool decode_cps(work *w, const char *s, size_t n)
{
    if (!grow((void **)&w->cps, &w->cap_cps, n, sizeof *w->cps) ||
        !grow((void **)&w->fl, &w->cap_fl, n, 1))
        return false;
    w->n_cps = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += utf8_decode((const unsigned char *)s + i, n - i, &cp);
        w->fl[w->n_cps] = ucd_flags(cp);
        w->cps[w->n_cps++] = cp;
    }
    return true;
}

/* The word's code points, re-encoded as UTF-8 (so invalid input reads as U+FFFD), each byte
 * then written as its byte-level code point. */
static bool encode_word(work *w, size_t first, size_t count)
{
    w->buf.n = 0;
    for (size_t i = first; i < first + count; i++) {
        char u[4], e[4];
        size_t n = utf8_encode(w->cps[i], u);
        for (size_t k = 0; k < n; k++)
            if (!bytes_put(&w->buf, e, utf8_encode(byte_to_cp((unsigned char)u[k]), e)))
                return false;
    }
    return true;
}

static bool bpe_pair(work *w, int32_t left, int32_t right)
{
    const sym *l = &w->syms[left], *r = &w->syms[right];
    int32_t rank = merge_rank(w->t, w->buf.p + l->off, l->n, w->buf.p + r->off, r->n);
    if (rank < 0)
        return true;
    return heap_push(&w->q, (bigram){-(double)rank, left, right, l->n + r->n});
}

/* A final symbol that is not a token (only with merges that make non-tokens) goes out as
 * the tokens of its single bytes, where they exist, as in llama.cpp. */
static bool bpe_emit(work *w, const sym *s)
{
    int32_t id = mlc_tokenizer_find(w->t, w->buf.p + s->off, s->n);
    if (id >= 0)
        return ivec_push(&w->out, id);
    for (size_t i = 0; i < s->n; i++) {
        id = mlc_tokenizer_find(w->t, w->buf.p + s->off + i, 1);
        if (id >= 0 && !ivec_push(&w->out, id))
            return false;
    }
    return true;
}

static bool bpe_word(work *w)
{
    if (w->t->ignore_merges) { /* llama3: a word that is a token is taken whole */
        int32_t id = mlc_tokenizer_find(w->t, w->buf.p, w->buf.n);
        if (id >= 0)
            return ivec_push(&w->out, id);
    }
    if (!make_syms(w) || !run_merges(w, bpe_pair))
        return false;
    for (size_t i = 0; i < w->n_syms; i++)
        if (w->syms[i].n && !bpe_emit(w, &w->syms[i]))
            return false;
    return true;
}

static mlc_status bpe_fragment(work *w, const char *s, size_t n)
{
    if (!decode_cps(w, s, n) || !pretokenize(w))
        return MLC_ERR_NOMEM;
    size_t first = 0;
    for (size_t i = 0; i < w->offs.n; i++) {
        if (!encode_word(w, first, w->offs.p[i]) || !bpe_word(w))
            return MLC_ERR_NOMEM;
        first += w->offs.p[i];
    }
    return MLC_OK;
}

/* ------------------------------------------------------------------ pre-tokenizer words */

mlc_status mlc_tokenizer_split(const mlc_tokenizer *t, const char *text, size_t len,
                               size_t **lens, size_t *n, mlc_err *err)
{
    if (lens)
        *lens = NULL;
    if (n)
        *n = 0;
    if (!t || !lens || !n || (!text && len))
        return mlc_err_set(err, MLC_ERR_ARG, "mlc_tokenizer_split: NULL argument");
    if (!len)
        return MLC_OK;
    work w = {.t = t};
    bool ok = true;
    if (t->kind == KIND_SPM) {
        ok = grow((void **)&w.offs.p, &w.offs.cap, 1, sizeof(size_t));
        if (ok)
            w.offs.p[w.offs.n++] = len;
    } else if ((ok = decode_cps(&w, text, len) && pretokenize(&w))) {
        /* code-point counts to byte counts: decode again, counting bytes per piece */
        size_t at = 0;
        for (size_t i = 0; i < w.offs.n; i++) {
            size_t bytes_n = 0;
            for (size_t k = 0; k < w.offs.p[i]; k++) {
                uint32_t cp;
                bytes_n += utf8_decode((const unsigned char *)text + at + bytes_n,
                                       len - at - bytes_n, &cp);
            }
            w.offs.p[i] = bytes_n;
            at += bytes_n;
        }
    }
    if (!ok) {
        work_free(&w);
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: tokenizer: out of memory", t->path);
    }
    *lens = w.offs.p;
    *n = w.offs.n;
    w.offs.p = NULL;
    work_free(&w);
    return MLC_OK;
}

/* ------------------------------------------------------------------ tokenize */

static mlc_status add_special_id(work *w, int32_t id, const char *what, mlc_err *err)
{
    if (id < 0)
        return mlc_err_set(err, MLC_ERR_UNSUPPORTED, "%s: tokenizer: add_%s_token is set but "
                           "the vocabulary has no %s token", w->t->path, what, what);
    return ivec_push(&w->out, id) ? MLC_OK : MLC_ERR_NOMEM;
}

/* The fragments in order. SentencePiece prefixes a space to a text fragment at the start or
 * after a special token, as llama.cpp does. */
static mlc_status tokenize_frags(work *w, const char *text, const fragvec *frags, mlc_err *err)
{
    const mlc_tokenizer *t = w->t;
    bool after_special = true;
    for (size_t i = 0; i < frags->n; i++) {
        const frag *f = &frags->p[i];
        mlc_status st = MLC_OK;
        if (f->tok >= 0)
            st = ivec_push(&w->out, f->tok) ? MLC_OK : MLC_ERR_NOMEM;
        else if (t->kind == KIND_SPM)
            st = spm_fragment(w, text + f->off, f->len, t->add_space_prefix && after_special, err);
        else
            st = bpe_fragment(w, text + f->off, f->len);
        if (st)
            return st;
        after_special = f->tok >= 0;
    }
    return MLC_OK;
}

mlc_status mlc_tokenize(const mlc_tokenizer *t, const char *text, size_t len, bool add_special,
                        bool parse_special, int32_t **ids, size_t *n_ids, mlc_err *err)
{
    if (ids)
        *ids = NULL;
    if (n_ids)
        *n_ids = 0;
    if (!t || !ids || !n_ids || (!text && len))
        return mlc_err_set(err, MLC_ERR_ARG, "mlc_tokenize: NULL argument");
    work w = {.t = t};
    fragvec frags = {0};
    mlc_status st = partition(t, text, len, parse_special, &frags) ? MLC_OK : MLC_ERR_NOMEM;
    if (!st && add_special && t->add_bos)
        st = add_special_id(&w, t->bos, "bos", err);
    if (!st)
        st = tokenize_frags(&w, text, &frags, err);
    if (!st && add_special && t->add_eos)
        st = add_special_id(&w, t->eos, "eos", err);
    free(frags.p);
    if (st == MLC_ERR_NOMEM)
        mlc_err_set(err, st, "%s: tokenizer: out of memory", t->path);
    if (st || !w.out.n) {
        work_free(&w);
        return st;
    }
    *ids = w.out.p;
    *n_ids = w.out.n;
    w.out.p = NULL;
    work_free(&w);
    return MLC_OK;
}

/* ------------------------------------------------------------------ pieces */

/* Output that counts what does not fit. strip: drop one leading space of the next bytes
 * (llama.cpp's lstrip for the first token of a detokenization). */
typedef struct sink {
    char *buf;
    size_t cap, len;
    bool strip;
} sink;

static void sink_put(sink *k, const char *s, size_t n)
{
    if (k->strip && n) {
        if (s[0] == ' ') {
            s++;
            n--;
        }
        k->strip = false;
    }
    if (k->len < k->cap) {
        size_t room = k->cap - k->len;
        memcpy(k->buf + k->len, s, n < room ? n : room);
    }
    k->len += n;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* <0xXX> -> XX, parsed from the 4th byte on as llama.cpp does. */
static unsigned char byte_token_value(const char *s, size_t n)
{
    unsigned v = 0;
    for (size_t i = 3; i < n && hex_digit(s[i]) >= 0; i++)
        v = v * 16 + (unsigned)hex_digit(s[i]);
    return (unsigned char)v;
}

static void spm_unescape(const char *s, size_t n, sink *k)
{
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        if (n - i >= 3 && !memcmp(s + i, "\xE2\x96\x81", 3)) {
            sink_put(k, s + run, i - run);
            sink_put(k, " ", 1);
            i += 3;
            run = i;
        } else {
            i++;
        }
    }
    sink_put(k, s + run, n - run);
}

/* Byte-level code points back to bytes; one that is not in the alphabet is written as
 * llama.cpp writes it: "[UNK_BYTE_0x" + its UTF-8 in hex + the whole token text + "]". */
static void bpe_unmap(const char *s, size_t n, sink *k)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += utf8_decode((const unsigned char *)s + i, n - i, &cp);
        int b = cp_to_byte(cp);
        if (b >= 0) {
            char c = (char)b;
            sink_put(k, &c, 1);
            continue;
        }
        char u[4], hex[32];
        size_t un = utf8_encode(cp, u), o = 0;
        for (size_t j = 0; j < un; j++)
            o += (size_t)snprintf(hex + o, sizeof hex - o, "%02x", (unsigned char)u[j]);
        sink_put(k, "[UNK_BYTE_0x", 12);
        sink_put(k, hex, o);
        sink_put(k, s, n);
        sink_put(k, "]", 1);
    }
}

static void put_piece(const mlc_tokenizer *t, int32_t id, bool special, sink *k)
{
    const tok_info *e = &t->toks[id];
    const char *s = t->text + e->off;
    if (e->attr & (A_CONTROL | A_UNKNOWN | A_USER)) {
        if (special || (e->attr & A_USER))
            sink_put(k, s, e->len);
    } else if (e->attr & A_NORMAL) {
        if (t->kind == KIND_SPM)
            spm_unescape(s, e->len, k);
        else
            bpe_unmap(s, e->len, k);
    } else if ((e->attr & A_BYTE) && t->kind == KIND_SPM) {
        char b = (char)byte_token_value(s, e->len);
        sink_put(k, &b, 1);
    } /* unused and undefined tokens have no text */
}

size_t mlc_token_to_piece(const mlc_tokenizer *t, int32_t id, char *buf, size_t cap, bool special)
{
    if (!valid_id(t, id))
        return 0;
    sink k = {buf, buf ? cap : 0, 0, false};
    put_piece(t, id, special, &k);
    return k.len;
}

/* llama.cpp's clean_up_tokenization, three passes in place, kept byte for byte. */
static size_t clean_pass1(char *s, size_t n)
{
    size_t w = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) {
        char x = s[i];
        if (s[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ','))
            w--;
        s[w++] = x;
    }
    return w;
}

static size_t clean_pass2(char *s, size_t n)
{
    size_t w = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) {
        char x = s[i];
        if (x == '\'' && i + 1 < n && s[i - 1] == ' ' && s[i + 1] == ' ') {
            w--;          /* the space before */
            s[++i] = '\0'; /* and the one after, which is skipped */
        }
        s[w++] = x;
    }
    return w;
}

static bool drops_space(const char *s, size_t i, size_t n)
{
    char a = s[i + 1];
    if (a == 's' || a == 'm')
        return true;
    if (a == 't' || a == 'd' || i + 2 >= n)
        return false;
    char b = s[i + 2];
    return (a == 'r' && b == 'e') || (a == 'v' && b == 'e');
}

static size_t clean_pass3(char *s, size_t n)
{
    size_t w = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) {
        char x = s[i];
        if (s[i - 1] == ' ' && x == '\'' && i + 1 < n && drops_space(s, i, n))
            w--;
        s[w++] = x;
    }
    return w;
}

static void write_pieces(const mlc_tokenizer *t, const int32_t *ids, size_t n, bool special,
                         sink *k)
{
    for (size_t i = 0; i < n; i++) {
        k->strip = i == 0 && t->add_space_prefix;
        put_piece(t, ids[i], special, k);
    }
    k->strip = false;
}

mlc_status mlc_detokenize(const mlc_tokenizer *t, const int32_t *ids, size_t n, bool special,
                          char **out, size_t *out_len, mlc_err *err)
{
    if (out)
        *out = NULL;
    if (out_len)
        *out_len = 0;
    if (!t || !out || (!ids && n))
        return mlc_err_set(err, MLC_ERR_ARG, "mlc_detokenize: NULL argument");
    for (size_t i = 0; i < n; i++)
        if (!valid_id(t, ids[i]))
            return mlc_err_set(err, MLC_ERR_RANGE, "%s: detokenize: token id %d at %zu out of "
                               "range (vocabulary of %d tokens)", t->path, ids[i], i, t->n_vocab);
    sink k = {0};
    write_pieces(t, ids, n, special, &k);
    size_t len = k.len;
    char *s = malloc(len + 1);
    if (!s)
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: detokenize: out of memory", t->path);
    k = (sink){s, len, 0, false};
    write_pieces(t, ids, n, special, &k);
    if (t->clean_spaces)
        len = clean_pass3(s, clean_pass2(s, clean_pass1(s, len)));
    s[len] = '\0';
    *out = s;
    if (out_len)
        *out_len = len;
    return MLC_OK;
}
