//! Pipeline files (and `--set`) with unknown keys, wrong types and values out
//! of range: the built host refuses them before doing any work, with exit
//! code 1 and a message naming the key and, for parameters, the allowed range.

use jupiter_tests::*;

/// (pipeline file, substrings the error must contain)
const BAD_FILES: &[(&str, &[&str])] = &[
    // Unknown keys, at every level.
    (
        "[stak]\nplugin = \"stack-mean\"\n",
        &[
            "unknown field `stak`",
            "expected one of `version`, `backend`, `select`",
        ],
    ),
    (
        "[stack]\nplugin = \"stack-mean\"\nparam = {}\n",
        &[
            "unknown field `param`",
            "expected `plugin` or `params`",
            "line 3",
        ],
    ),
    (
        "[stack]\nplugin = \"stack-mean\"\nparams = { kappa = 2.0 }\n",
        &[
            "unknown parameter 'kappa'",
            "stage 'stack-mean'",
            "interpolation, quality_weighting, weight_power",
        ],
    ),
    // Wrong types.
    (
        "select = 25\n",
        &[
            "select = 25",
            "invalid type: integer `25`, expected a string",
        ],
    ),
    (
        "version = \"one\"\n",
        &["version = \"one\"", "invalid type"],
    ),
    (
        "[stack]\nplugin = \"stack-mean\"\nparams = { quality_weighting = \"yes\" }\n",
        &[
            "'quality_weighting'",
            "wrong type",
            "expected bool, true or false",
        ],
    ),
    (
        "[[post]]\nplugin = \"sharpen-wavelet\"\nparams = { gains = [1.0, \"x\"] }\n",
        &["'gains'", "non-number element", "list of floats"],
    ),
    (
        "[stack]\nplugin = \"stack-mean\"\nparams = \"fast\"\n",
        &["params", "invalid type"],
    ),
    // Values out of range or not among the choices.
    (
        "[stack]\nplugin = \"stack-mean\"\nparams = { weight_power = 99 }\n",
        &["'weight_power'", "out of range", "0 ..= 8", "got 99"],
    ),
    (
        "[[post]]\nplugin = \"gamma\"\nparams = { gamma = 100.0 }\n",
        &["'gamma'", "out of range", "0.05 ..= 10"],
    ),
    (
        "[stack]\nplugin = \"stack-mean\"\nparams = { interpolation = \"nearest\" }\n",
        &[
            "'interpolation'",
            "one of bicubic-sharp, bicubic, bilinear",
            "\"nearest\"",
        ],
    ),
    (
        "backend = \"quantum\"\n",
        &[
            "backend = \"quantum\"",
            "expected one of `auto`, `cpu`, `gpu`",
        ],
    ),
    ("select = \"150%\"\n", &["select", "150%", "0% < p <= 100%"]),
    ("version = 2\n", &["pipeline version 2 is not supported"]),
    // Stages that do not exist or are used as the wrong kind.
    (
        "[stack]\nplugin = \"stack-nope\"\n",
        &["'stack-nope'", "available stack stages: ", "stack-mean"],
    ),
    (
        "[quality]\nplugin = \"stack-mean\"\n",
        &["'stack-mean' is a stack stage", "as a quality stage"],
    ),
];

#[test]
fn bad_pipeline_files_are_refused_naming_the_key_and_the_range() {
    let (dir, ser) = small_capture("pipeline-config", 64, 48, 6);
    let out = dir.join("out.tif");
    let toml = dir.join("pipeline.toml");
    let with_file: [&std::ffi::OsStr; 4] = [
        "-o".as_ref(),
        out.as_os_str(),
        "--pipeline".as_ref(),
        toml.as_os_str(),
    ];
    for (text, want) in BAD_FILES {
        std::fs::write(&toml, text).unwrap();
        let err = refused_run(build(), &ser, &with_file);
        for w in *want {
            assert!(err.contains(w), "{text:?}: the error lacks {w:?}:\n{err}");
        }
        assert!(!out.exists());
    }
    // Errors about the file's syntax and structure name the file.
    std::fs::write(&toml, BAD_FILES[0].0).unwrap();
    let o = run_host([
        "run".as_ref(),
        ser.as_os_str(),
        "--pipeline".as_ref(),
        toml.as_os_str(),
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("pipeline.toml"));

    // The same checks apply to --set.
    for (set, want) in [
        (
            "stack.weight_power=-1",
            &["'weight_power'", "out of range", "0 ..= 8"][..],
        ),
        (
            "stack.nosuch=1",
            &["unknown parameter 'nosuch'", "stage 'stack-mean'"][..],
        ),
        ("gamma.gamma=2", &["no stage 'gamma' in the pipeline"][..]),
        ("stack", &["expected stage.param=value"][..]),
    ] {
        let err = refused_run(
            build(),
            &ser,
            &[
                "-o".as_ref(),
                out.as_os_str(),
                "--set".as_ref(),
                set.as_ref(),
            ],
        );
        for w in want {
            assert!(
                err.contains(w),
                "--set {set}: the error lacks {w:?}:\n{err}"
            );
        }
        assert!(!out.exists());
    }

    // A correct file runs.
    std::fs::write(
        &toml,
        "version = 1\nbackend = \"cpu\"\nselect = \"50%\"\n[stack]\nplugin = \"stack-mean\"\nparams = { weight_power = 2.0, quality_weighting = true }\n[[post]]\nplugin = \"gamma\"\nparams = { gamma = 1.2 }\n",
    )
    .unwrap();
    run_capture(build(), &ser, &with_file);
    assert!(out.exists());
}

#[test]
fn a_parameter_error_names_the_pipeline_file() {
    let (dir, ser) = small_capture("pipeline-names-file", 64, 48, 4);
    let pipeline = dir.join("mars.toml");
    std::fs::write(
        &pipeline,
        "[stack]\nplugin = \"stack-sigma-clip\"\nparams = { kappa_low = 50 }\n",
    )
    .unwrap();
    let o = try_run_capture(
        build(),
        &ser,
        &[
            "-o".as_ref(),
            dir.join("o.tif").as_os_str(),
            "--pipeline".as_ref(),
            pipeline.as_os_str(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("mars.toml") && err.contains("'kappa_low'") && err.contains("0.1 ..= 10"),
        "{err}"
    );
    assert!(!dir.join("o.tif").exists());
}
