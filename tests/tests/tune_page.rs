//! `jupiter-host tune`: the real server on a generated capture. Without a
//! browser: it listens on 127.0.0.1 only, refuses requests without the
//! token, renders and reports bad parameters. With Debian's Chromium driven
//! through `chromedriver` (WebDriver): the page builds its controls, moving
//! deconvolve's sigma changes the preview, "Save" writes an image and a
//! pipeline TOML, and `run --pipeline` on the same capture reproduces the
//! image bit for bit; the page logs no console error and the test saves a
//! screenshot (`target/tmp/e2e/tune-browser/tune.png`). Without chromedriver
//! the browser test is listed as ignored, unless `CI` is set.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::{json, Value};

use jupiter_tests::*;

fn main() {
    let args = Arguments::from_args();
    let driver = which("chromedriver");
    let browser = which("chromium").or_else(|| which("chromium-browser"));
    let missing = driver.is_none() || browser.is_none();
    let required = std::env::var_os("CI").is_some();
    let trials = vec![
        Trial::test("the_server_is_local_and_needs_the_token", || {
            server_checks().map_err(Failed::from)
        }),
        Trial::test(
            "a_moved_control_changes_the_preview_and_save_reproduces",
            move || {
                let (Some(d), Some(b)) = (driver.clone(), browser.clone()) else {
                    return Err(Failed::from(
                        "CI is set but chromium or chromedriver is not installed",
                    ));
                };
                in_browser(&d, &b).map_err(Failed::from)
            },
        )
        .with_ignored_flag(missing && !required),
    ];
    libtest_mimic::run(&args, trials).exit()
}

fn which(name: &str) -> Option<String> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}

/// A running `jupiter-host tune`, killed when dropped.
struct Tune {
    child: Child,
    url: String,
    port: u16,
}

impl Drop for Tune {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `tune` on `input` in `dir` (the working directory Save writes to)
/// and waits for the URL line.
fn start_tune(dir: &Path, input: &Path) -> Result<Tune, String> {
    let mut child = Command::new(host())
        .current_dir(dir)
        .args([
            "--plugins".as_ref(),
            build().as_os_str(),
            "--cpu".as_ref(),
            "tune".as_ref(),
        ])
        .arg(input)
        .args(["--no-browser", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start jupiter-host tune: {e}"))?;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(300))
        .map_err(|_| "tune printed no URL".to_string())?;
    let url = line
        .strip_prefix("tuning page: ")
        .ok_or_else(|| format!("unexpected first line {line:?}"))?
        .to_string();
    let rest = url
        .strip_prefix("http://127.0.0.1:")
        .ok_or_else(|| format!("the URL {url} is not on 127.0.0.1"))?;
    let port = rest
        .split('/')
        .next()
        .unwrap()
        .parse()
        .map_err(|e| format!("{url}: {e}"))?;
    Ok(Tune { child, url, port })
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into()
}

/// (status, body) of a GET or (with a body) a POST.
fn http(url: &str, body: Option<&Value>) -> Result<(u16, Vec<u8>), String> {
    let a = agent();
    let resp = match body {
        None => a.get(url).call(),
        Some(b) => a.post(url).send_json(b),
    }
    .map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .with_config()
        .limit(256 << 20)
        .read_to_vec()
        .map_err(|e| e.to_string())?;
    Ok((status, bytes))
}

fn capture(name: &str) -> (PathBuf, PathBuf) {
    small_capture(name, 128, 112, 24)
}

/// The listening sockets on `port` from /proc/net/tcp{,6}: their local
/// addresses as the kernel writes them.
fn listeners(port: u16) -> Vec<String> {
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 3 && f[3] == "0A" {
                if let Some((addr, p)) = f[1].split_once(':') {
                    if u16::from_str_radix(p, 16) == Ok(port) {
                        out.push(addr.to_string());
                    }
                }
            }
        }
    }
    out
}

fn server_checks() -> Result<(), String> {
    let (dir, ser) = capture("tune-server");
    let t = start_tune(&dir, &ser)?;
    if Path::new("/proc/net/tcp").exists() {
        let l = listeners(t.port);
        // 127.0.0.1 in the kernel's little-endian hex.
        if l != ["0100007F"] {
            return Err(format!(
                "port {} listens on {l:?}, expected 127.0.0.1 only",
                t.port
            ));
        }
    }
    let base = format!("http://127.0.0.1:{}", t.port);
    for (path, body) in [
        ("/".to_string(), None),
        ("/state".to_string(), None),
        ("/0123456789abcdef0123456789abcdef/state".to_string(), None),
        ("/quit".to_string(), Some(json!({}))),
    ] {
        let (status, _) = http(&format!("{base}{path}"), body.as_ref())?;
        if status != 403 {
            return Err(format!(
                "{path} without the token answered {status}, expected 403"
            ));
        }
    }
    let (status, page) = http(&t.url, None)?;
    if status != 200 || !String::from_utf8_lossy(&page).contains("tune.js") {
        return Err(format!("the page answered {status}"));
    }
    let (_, state) = http(&format!("{}state", t.url), None)?;
    let state: Value = serde_json::from_slice(&state).map_err(|e| e.to_string())?;
    let names: Vec<&str> = state["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for want in [
        "deconvolve",
        "stretch",
        "sharpen-wavelet",
        "gamma",
        "rgb-align",
    ] {
        if !names.contains(&want) {
            return Err(format!("no controls for {want}: {names:?}"));
        }
    }
    let chain =
        json!([{ "plugin": "deconvolve", "params": { "sigma": 1.0 } }, { "plugin": "stretch" }]);
    let crop = json!({ "x": 10, "y": 10, "w": 50, "h": 40 });
    let (status, body) = http(
        &format!("{}render", t.url),
        Some(&json!({ "chain": chain, "crop": crop })),
    )?;
    let r: Value = serde_json::from_slice(&body).map_err(|e| format!("{status}: {e}"))?;
    if status != 200 || r["png"].as_str().map_or(0, str::len) < 100 {
        return Err(format!("render answered {status}: {r}"));
    }
    let bad =
        json!({ "chain": [{ "plugin": "deconvolve", "params": { "sigma": 99 } }], "crop": crop });
    let (status, body) = http(&format!("{}render", t.url), Some(&bad))?;
    let text = String::from_utf8_lossy(&body);
    if status != 400 || !text.contains("sigma") {
        return Err(format!("an out-of-range sigma answered {status}: {text}"));
    }
    http(&format!("{}quit", t.url), Some(&json!({})))?;
    let mut t = t;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(s)) = t.child.try_wait() {
            return if s.success() {
                Ok(())
            } else {
                Err(format!("tune exited with {s}"))
            };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("tune did not stop after quit".into())
}

/// A WebDriver session on a chromedriver of our own.
struct Driver {
    child: Child,
    base: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = http(&format!("{}", self.base), None);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Driver {
    fn start(driver: &str, browser: &str) -> Result<Driver, String> {
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{driver}: {e}"))?;
        let root = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while http(&format!("{root}/status"), None).is_err() {
            if Instant::now() > deadline {
                return Err("chromedriver did not start".into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": {
                "binary": browser,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1500,900"]
            }
        }}});
        let mut d = Driver {
            child,
            base: root.clone(),
        };
        let (status, body) = http(&format!("{root}/session"), Some(&caps))?;
        let v: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let id = v["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no WebDriver session ({status}): {v}"))?;
        d.base = format!("{root}/session/{id}");
        Ok(d)
    }

    fn call(&self, path: &str, body: Option<Value>) -> Result<Value, String> {
        let (status, bytes) = http(&format!("{}{path}", self.base), body.as_ref())?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("WebDriver {path}: {status} {v}"));
        }
        Ok(v["value"].clone())
    }

    fn script(&self, js: &str) -> Result<Value, String> {
        self.call("/execute/sync", Some(json!({ "script": js, "args": [] })))
    }

    /// Waits until `js` returns true.
    fn until(&self, js: &str, what: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if self.script(js)? == json!(true) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("timed out waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// True once the whole-image render of the current controls is shown.
const SETTLED: &str = "return !window.jupiterTuneBusy() && document.getElementById('preview').dataset.phase === 'full';";

fn in_browser(driver: &str, browser: &str) -> Result<(), String> {
    let (dir, ser) = capture("tune-browser");
    let t = start_tune(&dir, &ser)?;
    let d = Driver::start(driver, browser)?;
    d.call("/url", Some(json!({ "url": t.url })))?;
    d.until(SETTLED, "the first preview")?;
    let controls = d.script("return document.querySelectorAll('fieldset.stage .param').length;")?;
    if controls.as_u64().unwrap_or(0) < 8 {
        return Err(format!("{controls} parameter controls on the page"));
    }
    let digest = |d: &Driver| d.script("return document.getElementById('preview').dataset.digest;");
    let before = digest(&d)?;
    // Move deconvolve's sigma as a user drags the slider.
    d.script(
        "const r = document.querySelector('fieldset[data-name=deconvolve] input[type=range]:not([disabled])');\
         const all = [...document.querySelectorAll('fieldset[data-name=deconvolve] .param')];\
         const row = all.find(p => p.querySelector('label').textContent === 'sigma');\
         const s = row.querySelector('input[type=range]'); s.value = 1.5;\
         s.dispatchEvent(new Event('input', { bubbles: true })); return r !== null;",
    )?;
    d.until(
        &format!("return !window.jupiterTuneBusy() && document.getElementById('preview').dataset.phase === 'full' && document.getElementById('preview').dataset.digest !== {before};"),
        "the preview to change",
    )?;
    let save = d.call(
        "/element",
        Some(json!({ "using": "css selector", "value": "#save" })),
    )?;
    let id = save
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(Value::as_str)
        .ok_or("no Save button")?
        .to_string();
    d.call(&format!("/element/{id}/click"), Some(json!({})))?;
    d.until(
        "return !!document.getElementById('save').dataset.saved;",
        "Save",
    )?;
    let shot = d.call("/screenshot", None)?;
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot.as_str().unwrap_or(""))
        .map_err(|e| e.to_string())?;
    std::fs::write(dir.join("tune.png"), png).map_err(|e| e.to_string())?;
    let log = d.call("/se/log", Some(json!({ "type": "browser" })))?;
    let severe: Vec<&Value> = log
        .as_array()
        .map(|a| a.iter().filter(|e| e["level"] == "SEVERE").collect())
        .unwrap_or_default();
    if !severe.is_empty() {
        return Err(format!("console errors: {severe:?}"));
    }
    drop(d);
    drop(t);
    reproduces(&dir, &ser)
}

/// The saved pipeline, run on the capture, writes the saved image exactly.
fn reproduces(dir: &Path, ser: &Path) -> Result<(), String> {
    let toml_path = dir.join("cap_tuned.toml");
    let toml =
        std::fs::read_to_string(&toml_path).map_err(|e| format!("{}: {e}", toml_path.display()))?;
    if !toml.contains("sigma = 1.5") {
        return Err(format!("the saved pipeline lacks sigma = 1.5:\n{toml}"));
    }
    let again = dir.join("again.tif");
    run_ok([
        "--plugins".as_ref(),
        build().as_os_str(),
        "--cpu".as_ref(),
        "-q".as_ref(),
        "run".as_ref(),
        ser.as_os_str(),
        "--pipeline".as_ref(),
        toml_path.as_os_str(),
        "-o".as_ref(),
        again.as_os_str(),
    ]);
    let (a, b) = (read_tiff(&dir.join("cap_tuned.tif")), read_tiff(&again));
    if a.data != b.data || (a.width, a.height) != (b.width, b.height) {
        return Err("run --pipeline with the saved pipeline wrote a different image".into());
    }
    // The saved image is dated like the run's output (the capture's mid-time).
    let date = |p: &Path| -> Result<String, String> {
        let f = std::fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()))?;
        let mut d =
            tiff::decoder::Decoder::new(std::io::BufReader::new(f)).map_err(|e| e.to_string())?;
        d.get_tag_ascii_string(tiff::tags::Tag::DateTime)
            .map_err(|e| format!("{}: no DateTime: {e}", p.display()))
    };
    let (saved, ran) = (date(&dir.join("cap_tuned.tif"))?, date(&again)?);
    if saved != ran {
        return Err(format!(
            "the saved image is dated {saved}, the run's output {ran}"
        ));
    }
    Ok(())
}
