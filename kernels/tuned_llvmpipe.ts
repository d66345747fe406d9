/**
 * Tuning records measured on llvmpipe (LLVM 15.0.6, 256 bits) by `deno task tune --shipped` (see `tune.ts`),
 * shipped so that a fresh machine with this adapter chooses without measuring.
 *
 * @module
 */
import type { TuneRecord } from "./tune.ts";

/** Records per kernel class, measured on llvmpipe (LLVM 15.0.6, 256 bits). */
export const LLVMPIPE_RECORDS: Readonly<Record<string, TuneRecord>> = {
  "conv2d.backFilter x128x128x8x8 w128x128x3x3 s1x1 p1,1,1,1 d1x1 g1": {
    "candidates": [
      {
        "variant": {
          "algo": "implicit",
          "cap": 8,
        },
        "runMs": 221.1,
        "compileMs": 477.8,
        "error": 0,
      },
      {
        "variant": null,
        "runMs": 103.2,
        "compileMs": 8666,
        "error": 0,
      },
      {
        "variant": {
          "algo": "rowsFilter",
          "to": 4,
          "tc": 1,
        },
        "runMs": 93.33,
        "compileMs": 168.5,
        "error": 0.000004329,
      },
      {
        "variant": {
          "algo": "rowsFilter",
          "to": 4,
          "tc": 2,
        },
        "runMs": 124.9,
        "compileMs": 299.8,
        "error": 0.000004329,
      },
      {
        "variant": {
          "algo": "rowsFilter",
          "to": 8,
          "tc": 1,
        },
        "runMs": 123,
        "compileMs": 283.4,
        "error": 0.000004329,
      },
      {
        "variant": {
          "algo": "rowsFilter",
          "to": 8,
          "tc": 2,
        },
        "runMs": 91.53,
        "compileMs": 740.2,
        "error": 0.000003996,
      },
      {
        "variant": {
          "algo": "rowsFilter",
          "to": 8,
          "tc": 4,
        },
        "runMs": 104.7,
        "compileMs": 2358,
        "error": 0.000003463,
      },
      {
        "variant": {
          "algo": "explicit",
        },
        "runMs": 127.8,
        "compileMs": 1913,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 16,
        },
        "runMs": 139.1,
        "compileMs": 2214,
        "error": 0,
      },
    ],
    "direction": "backFilter",
    "spec": {
      "batch": 128,
      "inChannels": 128,
      "height": 8,
      "width": 8,
      "outChannels": 128,
      "kernelH": 3,
      "kernelW": 3,
      "stride": [
        1,
        1,
      ],
      "padding": {
        "top": 1,
        "bottom": 1,
        "left": 1,
        "right": 1,
      },
      "dilation": [
        1,
        1,
      ],
      "groups": 1,
      "profile": "llvmpipe",
    },
  },
  "conv2d.backFilter x128x128x8x8 w256x128x3x3 s2x2 p1,1,1,1 d1x1 g1": {
    "candidates": [
      {
        "variant": {
          "algo": "implicit",
          "cap": 8,
        },
        "runMs": 127.4,
        "compileMs": 387,
        "error": 0,
      },
      {
        "variant": null,
        "runMs": 51.5,
        "compileMs": 8353,
        "error": 0,
      },
      {
        "variant": {
          "algo": "explicit",
        },
        "runMs": 56.71,
        "compileMs": 1844,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 16,
        },
        "runMs": 68.99,
        "compileMs": 2655,
        "error": 0,
      },
    ],
    "direction": "backFilter",
    "spec": {
      "batch": 128,
      "inChannels": 128,
      "height": 8,
      "width": 8,
      "outChannels": 256,
      "kernelH": 3,
      "kernelW": 3,
      "stride": [
        2,
        2,
      ],
      "padding": {
        "top": 1,
        "bottom": 1,
        "left": 1,
        "right": 1,
      },
      "dilation": [
        1,
        1,
      ],
      "groups": 1,
      "profile": "llvmpipe",
    },
  },
  "conv2d.backFilter x128x256x4x4 w256x256x3x3 s1x1 p1,1,1,1 d1x1 g1": {
    "candidates": [
      {
        "variant": {
          "algo": "implicit",
          "cap": 8,
        },
        "runMs": 220,
        "compileMs": 432.3,
        "error": 0,
      },
      {
        "variant": null,
        "runMs": 105,
        "compileMs": 8290,
        "error": 0,
      },
      {
        "variant": {
          "algo": "rowsFilter",
          "to": 4,
          "tc": 1,
        },
        "runMs": 102.7,
        "compileMs": 121.7,
        "error": 0.00000172,
      },
      {
        "variant": {
          "algo": "rowsFilter",
          "to": 4,
          "tc": 2,
        },
        "runMs": 74.35,
        "compileMs": 367.6,
        "error": 0.00000172,
      },
      {
        "variant": {
          "algo": "rowsFilter",
          "to": 8,
          "tc": 1,
        },
        "runMs": 80.37,
        "compileMs": 285.3,
        "error": 0.00000172,
      },
      {
        "variant": {
          "algo": "rowsFilter",
          "to": 8,
          "tc": 2,
        },
        "runMs": 107,
        "compileMs": 631.6,
        "error": 0.00000172,
      },
      {
        "variant": {
          "algo": "rowsFilter",
          "to": 8,
          "tc": 4,
        },
        "runMs": 111.7,
        "compileMs": 2218,
        "error": 0.00000172,
      },
      {
        "variant": {
          "algo": "explicit",
        },
        "runMs": 143.8,
        "compileMs": 1899,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 16,
        },
        "runMs": 133.1,
        "compileMs": 2308,
        "error": 0,
      },
    ],
    "direction": "backFilter",
    "spec": {
      "batch": 128,
      "inChannels": 256,
      "height": 4,
      "width": 4,
      "outChannels": 256,
      "kernelH": 3,
      "kernelW": 3,
      "stride": [
        1,
        1,
      ],
      "padding": {
        "top": 1,
        "bottom": 1,
        "left": 1,
        "right": 1,
      },
      "dilation": [
        1,
        1,
      ],
      "groups": 1,
      "profile": "llvmpipe",
    },
  },
  "conv2d.backFilter x128x32x32x32 w32x32x3x3 s1x1 p1,1,1,1 d1x1 g1": {
    "candidates": [
      {
        "variant": {
          "algo": "implicit",
          "cap": 8,
        },
        "runMs": 246.5,
        "compileMs": 714.1,
        "error": 0,
      },
      {
        "variant": null,
        "runMs": 129.5,
        "compileMs": 3424,
        "error": 0.000002681,
      },
      {
        "variant": {
          "algo": "rowsFilter",
          "to": 4,
          "tc": 1,
        },
        "runMs": 189.6,
        "compileMs": 311.4,
        "error": 0.000002802,
      },
      {
        "variant": {
          "algo": "rowsFilter",
          "to": 4,
          "tc": 2,
        },
        "runMs": 133.5,
        "compileMs": 470.3,
        "error": 0.000002529,
      },
      {
        "variant": {
          "algo": "rowsFilter",
          "to": 8,
          "tc": 1,
        },
        "runMs": 144.4,
        "compileMs": 320,
        "error": 0.000002529,
      },
      {
        "variant": {
          "algo": "rowsFilter",
          "to": 8,
          "tc": 2,
        },
        "runMs": 112.4,
        "compileMs": 1092,
        "error": 0.000002666,
      },
      {
        "variant": {
          "algo": "explicit",
        },
        "runMs": 306,
        "compileMs": 4645,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 16,
        },
        "runMs": 152.9,
        "compileMs": 2559,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 32,
        },
        "runMs": 138.6,
        "compileMs": 7708,
        "error": 0,
      },
    ],
    "direction": "backFilter",
    "spec": {
      "batch": 128,
      "inChannels": 32,
      "height": 32,
      "width": 32,
      "outChannels": 32,
      "kernelH": 3,
      "kernelW": 3,
      "stride": [
        1,
        1,
      ],
      "padding": {
        "top": 1,
        "bottom": 1,
        "left": 1,
        "right": 1,
      },
      "dilation": [
        1,
        1,
      ],
      "groups": 1,
      "profile": "llvmpipe",
    },
  },
  "conv2d.backFilter x128x32x32x32 w64x32x3x3 s2x2 p1,1,1,1 d1x1 g1": {
    "candidates": [
      {
        "variant": {
          "algo": "implicit",
          "cap": 8,
        },
        "runMs": 127,
        "compileMs": 422.9,
        "error": 0,
      },
      {
        "variant": null,
        "runMs": 58.68,
        "compileMs": 9776,
        "error": 0,
      },
      {
        "variant": {
          "algo": "explicit",
        },
        "runMs": 115.9,
        "compileMs": 1959,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 16,
        },
        "runMs": 74.79,
        "compileMs": 2614,
        "error": 0,
      },
    ],
    "direction": "backFilter",
    "spec": {
      "batch": 128,
      "inChannels": 32,
      "height": 32,
      "width": 32,
      "outChannels": 64,
      "kernelH": 3,
      "kernelW": 3,
      "stride": [
        2,
        2,
      ],
      "padding": {
        "top": 1,
        "bottom": 1,
        "left": 1,
        "right": 1,
      },
      "dilation": [
        1,
        1,
      ],
      "groups": 1,
      "profile": "llvmpipe",
    },
  },
  "conv2d.backFilter x128x3x64x64 w32x3x3x3 s2x2 p1,1,1,1 d1x1 g1": {
    "candidates": [
      {
        "variant": {
          "algo": "implicit",
          "cap": 8,
        },
        "runMs": 28.03,
        "compileMs": 487.2,
        "error": 0,
      },
      {
        "variant": null,
        "runMs": 26.72,
        "compileMs": 2323,
        "error": 0,
      },
      {
        "variant": {
          "algo": "explicit",
        },
        "runMs": 36.43,
        "compileMs": 2063,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 32,
        },
        "runMs": 40.95,
        "compileMs": 8637,
        "error": 0,
      },
    ],
    "direction": "backFilter",
    "spec": {
      "batch": 128,
      "inChannels": 3,
      "height": 64,
      "width": 64,
      "outChannels": 32,
      "kernelH": 3,
      "kernelW": 3,
      "stride": [
        2,
        2,
      ],
      "padding": {
        "top": 1,
        "bottom": 1,
        "left": 1,
        "right": 1,
      },
      "dilation": [
        1,
        1,
      ],
      "groups": 1,
      "profile": "llvmpipe",
    },
  },
  "conv2d.backFilter x128x64x16x16 w128x64x3x3 s2x2 p1,1,1,1 d1x1 g1": {
    "candidates": [
      {
        "variant": {
          "algo": "implicit",
          "cap": 8,
        },
        "runMs": 120.1,
        "compileMs": 381.4,
        "error": 0,
      },
      {
        "variant": null,
        "runMs": 64.66,
        "compileMs": 9878,
        "error": 0,
      },
      {
        "variant": {
          "algo": "explicit",
        },
        "runMs": 74.79,
        "compileMs": 2353,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 16,
        },
        "runMs": 73.06,
        "compileMs": 2751,
        "error": 0,
      },
    ],
    "direction": "backFilter",
    "spec": {
      "batch": 128,
      "inChannels": 64,
      "height": 16,
      "width": 16,
      "outChannels": 128,
      "kernelH": 3,
      "kernelW": 3,
      "stride": [
        2,
        2,
      ],
      "padding": {
        "top": 1,
        "bottom": 1,
        "left": 1,
        "right": 1,
      },
      "dilation": [
        1,
        1,
      ],
      "groups": 1,
      "profile": "llvmpipe",
    },
  },
  "conv2d.backFilter x128x64x16x16 w64x64x3x3 s1x1 p1,1,1,1 d1x1 g1": {
    "candidates": [
      {
        "variant": {
          "algo": "implicit",
          "cap": 8,
        },
        "runMs": 237.9,
        "compileMs": 474.9,
        "error": 0,
      },
      {
        "variant": null,
        "runMs": 101.2,
        "compileMs": 2813,
        "error": 0.000003354,
      },
      {
        "variant": {
          "algo": "rowsFilter",
          "to": 4,
          "tc": 1,
        },
        "runMs": 137.4,
        "compileMs": 214.4,
        "error": 0.00000372,
      },
      {
        "variant": {
          "algo": "rowsFilter",
          "to": 4,
          "tc": 2,
        },
        "runMs": 126,
        "compileMs": 461.5,
        "error": 0.000003382,
      },
      {
        "variant": {
          "algo": "rowsFilter",
          "to": 8,
          "tc": 1,
        },
        "runMs": 127.9,
        "compileMs": 333.3,
        "error": 0.000003382,
      },
      {
        "variant": {
          "algo": "rowsFilter",
          "to": 8,
          "tc": 2,
        },
        "runMs": 119.3,
        "compileMs": 918.3,
        "error": 0.000003551,
      },
      {
        "variant": {
          "algo": "explicit",
        },
        "runMs": 244.4,
        "compileMs": 2162,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 16,
        },
        "runMs": 138.1,
        "compileMs": 2461,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 32,
        },
        "runMs": 106.7,
        "compileMs": 7161,
        "error": 0,
      },
    ],
    "direction": "backFilter",
    "spec": {
      "batch": 128,
      "inChannels": 64,
      "height": 16,
      "width": 16,
      "outChannels": 64,
      "kernelH": 3,
      "kernelW": 3,
      "stride": [
        1,
        1,
      ],
      "padding": {
        "top": 1,
        "bottom": 1,
        "left": 1,
        "right": 1,
      },
      "dilation": [
        1,
        1,
      ],
      "groups": 1,
      "profile": "llvmpipe",
    },
  },
  "conv2d.backInput x128x128x8x8 w128x128x3x3 s1x1 p1,1,1,1 d1x1 g1": {
    "candidates": [
      {
        "variant": {
          "algo": "implicit",
          "cap": 8,
        },
        "runMs": 344.1,
        "compileMs": 487.1,
        "error": 0,
      },
      {
        "variant": null,
        "runMs": 43.27,
        "compileMs": 8862,
        "error": 6.902e-7,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 8,
          "tn": 16,
        },
        "runMs": 75.21,
        "compileMs": 437,
        "error": 6.902e-7,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 8,
          "tn": 32,
        },
        "runMs": 60.15,
        "compileMs": 968.3,
        "error": 6.902e-7,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 16,
          "tn": 32,
        },
        "runMs": 58.47,
        "compileMs": 3112,
        "error": 6.902e-7,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 8,
          "tn": 64,
        },
        "runMs": 44.21,
        "compileMs": 3166,
        "error": 6.902e-7,
      },
      {
        "variant": {
          "algo": "explicit",
        },
        "runMs": 122,
        "compileMs": 1883,
        "error": 0.000001242,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 16,
        },
        "runMs": 198.7,
        "compileMs": 2973,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 32,
        },
        "runMs": 179.7,
        "compileMs": 11600,
        "error": 0,
      },
    ],
    "direction": "backInput",
    "spec": {
      "batch": 128,
      "inChannels": 128,
      "height": 8,
      "width": 8,
      "outChannels": 128,
      "kernelH": 3,
      "kernelW": 3,
      "stride": [
        1,
        1,
      ],
      "padding": {
        "top": 1,
        "bottom": 1,
        "left": 1,
        "right": 1,
      },
      "dilation": [
        1,
        1,
      ],
      "groups": 1,
      "profile": "llvmpipe",
    },
  },
  "conv2d.backInput x128x128x8x8 w256x128x3x3 s2x2 p1,1,1,1 d1x1 g1": {
    "candidates": [
      {
        "variant": {
          "algo": "implicit",
          "cap": 8,
        },
        "runMs": 652.4,
        "compileMs": 494.9,
        "error": 0,
      },
      {
        "variant": null,
        "runMs": 56.98,
        "compileMs": 1887,
        "error": 0.000001559,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 16,
        },
        "runMs": 416.5,
        "compileMs": 2764,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 32,
        },
        "runMs": 363.6,
        "compileMs": 11890,
        "error": 0,
      },
    ],
    "direction": "backInput",
    "spec": {
      "batch": 128,
      "inChannels": 128,
      "height": 8,
      "width": 8,
      "outChannels": 256,
      "kernelH": 3,
      "kernelW": 3,
      "stride": [
        2,
        2,
      ],
      "padding": {
        "top": 1,
        "bottom": 1,
        "left": 1,
        "right": 1,
      },
      "dilation": [
        1,
        1,
      ],
      "groups": 1,
      "profile": "llvmpipe",
    },
  },
  "conv2d.backInput x128x256x4x4 w256x256x3x3 s1x1 p1,1,1,1 d1x1 g1": {
    "candidates": [
      {
        "variant": {
          "algo": "implicit",
          "cap": 8,
        },
        "runMs": 315.2,
        "compileMs": 476.8,
        "error": 0,
      },
      {
        "variant": null,
        "runMs": 74,
        "compileMs": 8540,
        "error": 8.03e-7,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 8,
          "tn": 16,
        },
        "runMs": 60.47,
        "compileMs": 645.8,
        "error": 8.03e-7,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 8,
          "tn": 32,
        },
        "runMs": 65.39,
        "compileMs": 881.1,
        "error": 8.03e-7,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 16,
          "tn": 32,
        },
        "runMs": 49.5,
        "compileMs": 2968,
        "error": 8.03e-7,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 8,
          "tn": 64,
        },
        "runMs": 48.65,
        "compileMs": 2984,
        "error": 8.03e-7,
      },
      {
        "variant": {
          "algo": "explicit",
        },
        "runMs": 114.3,
        "compileMs": 2053,
        "error": 0.000002088,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 16,
        },
        "runMs": 216.7,
        "compileMs": 2986,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 32,
        },
        "runMs": 179.3,
        "compileMs": 10610,
        "error": 0,
      },
    ],
    "direction": "backInput",
    "spec": {
      "batch": 128,
      "inChannels": 256,
      "height": 4,
      "width": 4,
      "outChannels": 256,
      "kernelH": 3,
      "kernelW": 3,
      "stride": [
        1,
        1,
      ],
      "padding": {
        "top": 1,
        "bottom": 1,
        "left": 1,
        "right": 1,
      },
      "dilation": [
        1,
        1,
      ],
      "groups": 1,
      "profile": "llvmpipe",
    },
  },
  "conv2d.backInput x128x32x32x32 w32x32x3x3 s1x1 p1,1,1,1 d1x1 g1": {
    "candidates": [
      {
        "variant": {
          "algo": "implicit",
          "cap": 8,
        },
        "runMs": 321.4,
        "compileMs": 499.6,
        "error": 0,
      },
      {
        "variant": null,
        "runMs": 69.9,
        "compileMs": 10720,
        "error": 5.707e-7,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 8,
          "tn": 16,
        },
        "runMs": 105.7,
        "compileMs": 767.6,
        "error": 5.707e-7,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 8,
          "tn": 32,
        },
        "runMs": 81.23,
        "compileMs": 1587,
        "error": 5.707e-7,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 16,
          "tn": 32,
        },
        "runMs": 70.3,
        "compileMs": 4627,
        "error": 5.707e-7,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 8,
          "tn": 64,
        },
        "runMs": 59.57,
        "compileMs": 3462,
        "error": 5.707e-7,
      },
      {
        "variant": {
          "algo": "explicit",
        },
        "runMs": 207.4,
        "compileMs": 4349,
        "error": 7.134e-7,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 16,
        },
        "runMs": 206.1,
        "compileMs": 3578,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 32,
        },
        "runMs": 188.6,
        "compileMs": 18570,
        "error": 0,
      },
    ],
    "direction": "backInput",
    "spec": {
      "batch": 128,
      "inChannels": 32,
      "height": 32,
      "width": 32,
      "outChannels": 32,
      "kernelH": 3,
      "kernelW": 3,
      "stride": [
        1,
        1,
      ],
      "padding": {
        "top": 1,
        "bottom": 1,
        "left": 1,
        "right": 1,
      },
      "dilation": [
        1,
        1,
      ],
      "groups": 1,
      "profile": "llvmpipe",
    },
  },
  "conv2d.backInput x128x32x32x32 w64x32x3x3 s2x2 p1,1,1,1 d1x1 g1": {
    "candidates": [
      {
        "variant": {
          "algo": "implicit",
          "cap": 8,
        },
        "runMs": 703.1,
        "compileMs": 527.6,
        "error": 0,
      },
      {
        "variant": null,
        "runMs": 111.7,
        "compileMs": 1937,
        "error": 7.54e-7,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 16,
        },
        "runMs": 416.9,
        "compileMs": 3037,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 32,
        },
        "runMs": 353.9,
        "compileMs": 11850,
        "error": 0,
      },
    ],
    "direction": "backInput",
    "spec": {
      "batch": 128,
      "inChannels": 32,
      "height": 32,
      "width": 32,
      "outChannels": 64,
      "kernelH": 3,
      "kernelW": 3,
      "stride": [
        2,
        2,
      ],
      "padding": {
        "top": 1,
        "bottom": 1,
        "left": 1,
        "right": 1,
      },
      "dilation": [
        1,
        1,
      ],
      "groups": 1,
      "profile": "llvmpipe",
    },
  },
  "conv2d.backInput x128x64x16x16 w128x64x3x3 s2x2 p1,1,1,1 d1x1 g1": {
    "candidates": [
      {
        "variant": {
          "algo": "implicit",
          "cap": 8,
        },
        "runMs": 681,
        "compileMs": 551.6,
        "error": 0,
      },
      {
        "variant": null,
        "runMs": 64.42,
        "compileMs": 1845,
        "error": 8.733e-7,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 16,
        },
        "runMs": 396.2,
        "compileMs": 3108,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 32,
        },
        "runMs": 373.7,
        "compileMs": 11150,
        "error": 0,
      },
    ],
    "direction": "backInput",
    "spec": {
      "batch": 128,
      "inChannels": 64,
      "height": 16,
      "width": 16,
      "outChannels": 128,
      "kernelH": 3,
      "kernelW": 3,
      "stride": [
        2,
        2,
      ],
      "padding": {
        "top": 1,
        "bottom": 1,
        "left": 1,
        "right": 1,
      },
      "dilation": [
        1,
        1,
      ],
      "groups": 1,
      "profile": "llvmpipe",
    },
  },
  "conv2d.backInput x128x64x16x16 w64x64x3x3 s1x1 p1,1,1,1 d1x1 g1": {
    "candidates": [
      {
        "variant": {
          "algo": "implicit",
          "cap": 8,
        },
        "runMs": 323.2,
        "compileMs": 502.1,
        "error": 0,
      },
      {
        "variant": null,
        "runMs": 55.81,
        "compileMs": 9734,
        "error": 6.475e-7,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 8,
          "tn": 16,
        },
        "runMs": 113.3,
        "compileMs": 633.1,
        "error": 6.475e-7,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 8,
          "tn": 32,
        },
        "runMs": 68.49,
        "compileMs": 1237,
        "error": 6.475e-7,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 16,
          "tn": 32,
        },
        "runMs": 64.4,
        "compileMs": 4057,
        "error": 6.475e-7,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 8,
          "tn": 64,
        },
        "runMs": 51.8,
        "compileMs": 2907,
        "error": 6.475e-7,
      },
      {
        "variant": {
          "algo": "explicit",
        },
        "runMs": 153.5,
        "compileMs": 2064,
        "error": 0.000001007,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 16,
        },
        "runMs": 208.4,
        "compileMs": 3042,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 32,
        },
        "runMs": 191.5,
        "compileMs": 12010,
        "error": 0,
      },
    ],
    "direction": "backInput",
    "spec": {
      "batch": 128,
      "inChannels": 64,
      "height": 16,
      "width": 16,
      "outChannels": 64,
      "kernelH": 3,
      "kernelW": 3,
      "stride": [
        1,
        1,
      ],
      "padding": {
        "top": 1,
        "bottom": 1,
        "left": 1,
        "right": 1,
      },
      "dilation": [
        1,
        1,
      ],
      "groups": 1,
      "profile": "llvmpipe",
    },
  },
  "conv2d.forward x128x128x8x8 w128x128x3x3 s1x1 p1,1,1,1 d1x1 g1": {
    "candidates": [
      {
        "variant": {
          "algo": "implicit",
          "cap": 8,
        },
        "runMs": 231.3,
        "compileMs": 353.3,
        "error": 0,
      },
      {
        "variant": null,
        "runMs": 42.84,
        "compileMs": 7389,
        "error": 0,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 8,
          "tn": 16,
        },
        "runMs": 78.5,
        "compileMs": 486.9,
        "error": 0,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 8,
          "tn": 32,
        },
        "runMs": 59.42,
        "compileMs": 868.2,
        "error": 0,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 16,
          "tn": 32,
        },
        "runMs": 55.53,
        "compileMs": 2660,
        "error": 0,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 8,
          "tn": 64,
        },
        "runMs": 42.11,
        "compileMs": 2227,
        "error": 0,
      },
      {
        "variant": {
          "algo": "explicit",
        },
        "runMs": 125.5,
        "compileMs": 1743,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 16,
        },
        "runMs": 141.9,
        "compileMs": 2221,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 32,
        },
        "runMs": 110.4,
        "compileMs": 6556,
        "error": 0,
      },
    ],
    "direction": "forward",
    "spec": {
      "batch": 128,
      "inChannels": 128,
      "height": 8,
      "width": 8,
      "outChannels": 128,
      "kernelH": 3,
      "kernelW": 3,
      "stride": [
        1,
        1,
      ],
      "padding": {
        "top": 1,
        "bottom": 1,
        "left": 1,
        "right": 1,
      },
      "dilation": [
        1,
        1,
      ],
      "groups": 1,
      "profile": "llvmpipe",
    },
  },
  "conv2d.forward x128x128x8x8 w256x128x3x3 s2x2 p1,1,1,1 d1x1 g1": {
    "candidates": [
      {
        "variant": {
          "algo": "implicit",
          "cap": 8,
        },
        "runMs": 124,
        "compileMs": 412,
        "error": 0,
      },
      {
        "variant": null,
        "runMs": 66.25,
        "compileMs": 7768,
        "error": 0,
      },
      {
        "variant": {
          "algo": "explicit",
        },
        "runMs": 75.28,
        "compileMs": 1940,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 16,
        },
        "runMs": 98.54,
        "compileMs": 2420,
        "error": 0,
      },
    ],
    "direction": "forward",
    "spec": {
      "batch": 128,
      "inChannels": 128,
      "height": 8,
      "width": 8,
      "outChannels": 256,
      "kernelH": 3,
      "kernelW": 3,
      "stride": [
        2,
        2,
      ],
      "padding": {
        "top": 1,
        "bottom": 1,
        "left": 1,
        "right": 1,
      },
      "dilation": [
        1,
        1,
      ],
      "groups": 1,
      "profile": "llvmpipe",
    },
  },
  "conv2d.forward x128x256x4x4 w256x256x3x3 s1x1 p1,1,1,1 d1x1 g1": {
    "candidates": [
      {
        "variant": {
          "algo": "implicit",
          "cap": 8,
        },
        "runMs": 292.2,
        "compileMs": 399.2,
        "error": 0,
      },
      {
        "variant": null,
        "runMs": 65.18,
        "compileMs": 11900,
        "error": 0,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 8,
          "tn": 16,
        },
        "runMs": 103.4,
        "compileMs": 525.8,
        "error": 0,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 8,
          "tn": 32,
        },
        "runMs": 58.03,
        "compileMs": 1161,
        "error": 0,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 16,
          "tn": 32,
        },
        "runMs": 71.6,
        "compileMs": 3437,
        "error": 0,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 8,
          "tn": 64,
        },
        "runMs": 71.88,
        "compileMs": 3085,
        "error": 0,
      },
      {
        "variant": {
          "algo": "explicit",
        },
        "runMs": 128.4,
        "compileMs": 2967,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 16,
        },
        "runMs": 142.6,
        "compileMs": 2404,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 32,
        },
        "runMs": 109.2,
        "compileMs": 7589,
        "error": 0,
      },
    ],
    "direction": "forward",
    "spec": {
      "batch": 128,
      "inChannels": 256,
      "height": 4,
      "width": 4,
      "outChannels": 256,
      "kernelH": 3,
      "kernelW": 3,
      "stride": [
        1,
        1,
      ],
      "padding": {
        "top": 1,
        "bottom": 1,
        "left": 1,
        "right": 1,
      },
      "dilation": [
        1,
        1,
      ],
      "groups": 1,
      "profile": "llvmpipe",
    },
  },
  "conv2d.forward x128x32x32x32 w32x32x3x3 s1x1 p1,1,1,1 d1x1 g1": {
    "candidates": [
      {
        "variant": {
          "algo": "implicit",
          "cap": 8,
        },
        "runMs": 257,
        "compileMs": 363.5,
        "error": 0,
      },
      {
        "variant": null,
        "runMs": 56.1,
        "compileMs": 6358,
        "error": 0,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 8,
          "tn": 16,
        },
        "runMs": 106.7,
        "compileMs": 522.9,
        "error": 0,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 8,
          "tn": 32,
        },
        "runMs": 74.74,
        "compileMs": 1020,
        "error": 0,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 16,
          "tn": 32,
        },
        "runMs": 63.5,
        "compileMs": 2759,
        "error": 0,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 8,
          "tn": 64,
        },
        "runMs": 59.03,
        "compileMs": 2563,
        "error": 0,
      },
      {
        "variant": {
          "algo": "explicit",
        },
        "runMs": 233.7,
        "compileMs": 3469,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 16,
        },
        "runMs": 151.7,
        "compileMs": 2174,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 32,
        },
        "runMs": 124.9,
        "compileMs": 6737,
        "error": 0,
      },
    ],
    "direction": "forward",
    "spec": {
      "batch": 128,
      "inChannels": 32,
      "height": 32,
      "width": 32,
      "outChannels": 32,
      "kernelH": 3,
      "kernelW": 3,
      "stride": [
        1,
        1,
      ],
      "padding": {
        "top": 1,
        "bottom": 1,
        "left": 1,
        "right": 1,
      },
      "dilation": [
        1,
        1,
      ],
      "groups": 1,
      "profile": "llvmpipe",
    },
  },
  "conv2d.forward x128x32x32x32 w64x32x3x3 s2x2 p1,1,1,1 d1x1 g1": {
    "candidates": [
      {
        "variant": {
          "algo": "implicit",
          "cap": 8,
        },
        "runMs": 133.2,
        "compileMs": 380.9,
        "error": 0,
      },
      {
        "variant": null,
        "runMs": 61.61,
        "compileMs": 7365,
        "error": 0,
      },
      {
        "variant": {
          "algo": "explicit",
        },
        "runMs": 74.99,
        "compileMs": 2043,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 16,
        },
        "runMs": 78.08,
        "compileMs": 2190,
        "error": 0,
      },
    ],
    "direction": "forward",
    "spec": {
      "batch": 128,
      "inChannels": 32,
      "height": 32,
      "width": 32,
      "outChannels": 64,
      "kernelH": 3,
      "kernelW": 3,
      "stride": [
        2,
        2,
      ],
      "padding": {
        "top": 1,
        "bottom": 1,
        "left": 1,
        "right": 1,
      },
      "dilation": [
        1,
        1,
      ],
      "groups": 1,
      "profile": "llvmpipe",
    },
  },
  "conv2d.forward x128x3x64x64 w32x3x3x3 s2x2 p1,1,1,1 d1x1 g1": {
    "candidates": [
      {
        "variant": {
          "algo": "implicit",
          "cap": 8,
        },
        "runMs": 40.41,
        "compileMs": 614.5,
        "error": 0,
      },
      {
        "variant": null,
        "runMs": 29.98,
        "compileMs": 2709,
        "error": 0,
      },
      {
        "variant": {
          "algo": "explicit",
        },
        "runMs": 30.74,
        "compileMs": 2041,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 32,
        },
        "runMs": 26.26,
        "compileMs": 9325,
        "error": 0,
      },
    ],
    "direction": "forward",
    "spec": {
      "batch": 128,
      "inChannels": 3,
      "height": 64,
      "width": 64,
      "outChannels": 32,
      "kernelH": 3,
      "kernelW": 3,
      "stride": [
        2,
        2,
      ],
      "padding": {
        "top": 1,
        "bottom": 1,
        "left": 1,
        "right": 1,
      },
      "dilation": [
        1,
        1,
      ],
      "groups": 1,
      "profile": "llvmpipe",
    },
  },
  "conv2d.forward x128x64x16x16 w128x64x3x3 s2x2 p1,1,1,1 d1x1 g1": {
    "candidates": [
      {
        "variant": {
          "algo": "implicit",
          "cap": 8,
        },
        "runMs": 130.3,
        "compileMs": 377.1,
        "error": 0,
      },
      {
        "variant": null,
        "runMs": 58.65,
        "compileMs": 6807,
        "error": 0,
      },
      {
        "variant": {
          "algo": "explicit",
        },
        "runMs": 60.34,
        "compileMs": 1791,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 16,
        },
        "runMs": 83.59,
        "compileMs": 2185,
        "error": 0,
      },
    ],
    "direction": "forward",
    "spec": {
      "batch": 128,
      "inChannels": 64,
      "height": 16,
      "width": 16,
      "outChannels": 128,
      "kernelH": 3,
      "kernelW": 3,
      "stride": [
        2,
        2,
      ],
      "padding": {
        "top": 1,
        "bottom": 1,
        "left": 1,
        "right": 1,
      },
      "dilation": [
        1,
        1,
      ],
      "groups": 1,
      "profile": "llvmpipe",
    },
  },
  "conv2d.forward x128x64x16x16 w64x64x3x3 s1x1 p1,1,1,1 d1x1 g1": {
    "candidates": [
      {
        "variant": {
          "algo": "implicit",
          "cap": 8,
        },
        "runMs": 250.1,
        "compileMs": 390.4,
        "error": 0,
      },
      {
        "variant": null,
        "runMs": 49.47,
        "compileMs": 7073,
        "error": 0,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 8,
          "tn": 16,
        },
        "runMs": 88.92,
        "compileMs": 490.4,
        "error": 0,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 8,
          "tn": 32,
        },
        "runMs": 62.85,
        "compileMs": 888.5,
        "error": 0,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 16,
          "tn": 32,
        },
        "runMs": 62.77,
        "compileMs": 2651,
        "error": 0,
      },
      {
        "variant": {
          "algo": "rows",
          "tm": 8,
          "tn": 64,
        },
        "runMs": 54.12,
        "compileMs": 2374,
        "error": 0,
      },
      {
        "variant": {
          "algo": "explicit",
        },
        "runMs": 164.2,
        "compileMs": 1740,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 16,
        },
        "runMs": 150.4,
        "compileMs": 2090,
        "error": 0,
      },
      {
        "variant": {
          "algo": "implicit",
          "cap": 32,
        },
        "runMs": 116.5,
        "compileMs": 6732,
        "error": 0,
      },
    ],
    "direction": "forward",
    "spec": {
      "batch": 128,
      "inChannels": 64,
      "height": 16,
      "width": 16,
      "outChannels": 64,
      "kernelH": 3,
      "kernelW": 3,
      "stride": [
        1,
        1,
      ],
      "padding": {
        "top": 1,
        "bottom": 1,
        "left": 1,
        "right": 1,
      },
      "dilation": [
        1,
        1,
      ],
      "groups": 1,
      "profile": "llvmpipe",
    },
  },
};
