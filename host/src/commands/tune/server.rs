//! The tuning page's HTTP server: 127.0.0.1 only, every path behind a
//! random token (`/TOKEN/…`; anything else is 403), one request at a time
//! (renders are serialised anyway: one stack, one device).

use std::io::Read;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use serde_json::json;
use tiny_http::{Header, Method, Request, Response, Server};

use super::tuner::{RenderRequest, SaveRequest, Tuner};

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("tune.js");
const STYLE: &str = include_str!("tune.css");

/// Largest request body accepted (a chain of parameters is a few kB).
const MAX_BODY: u64 = 1 << 20;

/// Serves until Ctrl-C or the page's "Quit".
pub fn serve(tuner: &Tuner, port: u16, open_browser: bool) -> Result<()> {
    let server = Server::http(("127.0.0.1", port))
        .map_err(|e| anyhow!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let port = server
        .server_addr()
        .to_ip()
        .map(|a| a.port())
        .context("the server has no IP address")?;
    let token = new_token()?;
    let url = format!("http://127.0.0.1:{port}/{token}/");
    // The one line a script (or a test) waits for.
    crate::commands::print_out(&format!("tuning page: {url}\n"))?;
    crate::errln!("(Ctrl-C or the page's Quit button stops the server)");
    if open_browser {
        open_in_browser(&url);
    }
    loop {
        if tuner.cancelled() {
            return Ok(());
        }
        let Some(req) = server.recv_timeout(Duration::from_millis(200))? else {
            continue;
        };
        if handle(tuner, &token, req) == Flow::Quit {
            return Ok(());
        }
    }
}

#[derive(PartialEq)]
enum Flow {
    Go,
    Quit,
}

/// 128 random bits as hex: the page's URL carries it, so another local user
/// or a page from elsewhere cannot drive the server.
fn new_token() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("no random token: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn open_in_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let spawned = if cfg!(windows) {
        std::process::Command::new("cmd")
            .args(["/C", "start", "", url])
            .spawn()
    } else {
        std::process::Command::new(opener).arg(url).spawn()
    };
    if spawned.is_err() {
        crate::errln!("(could not open a browser: open the URL above)");
    }
}

fn handle(tuner: &Tuner, token: &str, mut req: Request) -> Flow {
    let url = req.url().to_string();
    let path = url.split('?').next().unwrap_or("");
    let Some(route) = path
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(token))
        .and_then(|p| {
            p.strip_prefix('/')
                .or(if p.is_empty() { Some("") } else { None })
        })
    else {
        let _ = req.respond(text(
            403,
            "forbidden: this page needs the token printed by jupiter-host tune",
        ));
        return Flow::Go;
    };
    let method = req.method().clone();
    let body = match read_body(&mut req) {
        Ok(b) => b,
        Err(e) => {
            let _ = req.respond(text(413, &e.to_string()));
            return Flow::Go;
        }
    };
    let (response, flow) = match (method, route) {
        (Method::Get, "") => (
            typed(200, PAGE.as_bytes().to_vec(), "text/html; charset=utf-8"),
            Flow::Go,
        ),
        (Method::Get, "tune.js") => (
            typed(
                200,
                SCRIPT.as_bytes().to_vec(),
                "text/javascript; charset=utf-8",
            ),
            Flow::Go,
        ),
        (Method::Get, "tune.css") => (
            typed(200, STYLE.as_bytes().to_vec(), "text/css; charset=utf-8"),
            Flow::Go,
        ),
        (Method::Get, "state") => (json_response(200, &tuner.state()), Flow::Go),
        (Method::Get, "overview.png") => (
            result(tuner.overview_png().map(|p| typed(200, p, "image/png"))),
            Flow::Go,
        ),
        (Method::Post, "render") => (result(render(tuner, &body)), Flow::Go),
        (Method::Post, "save") => (result(save(tuner, &body)), Flow::Go),
        (Method::Post, "quit") => (text(200, "bye"), Flow::Quit),
        _ => (text(404, "no such page"), Flow::Go),
    };
    let _ = req.respond(response);
    flow
}

fn read_body(req: &mut Request) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    req.as_reader().take(MAX_BODY + 1).read_to_end(&mut body)?;
    if body.len() as u64 > MAX_BODY {
        anyhow::bail!("request body over {MAX_BODY} bytes");
    }
    Ok(body)
}

fn render(tuner: &Tuner, body: &[u8]) -> Result<Resp> {
    let req: RenderRequest = serde_json::from_slice(body).context("render request")?;
    let (png, messages, seconds) = tuner.render(&req)?;
    use base64::Engine;
    Ok(json_response(
        200,
        &json!({
            "png": base64::engine::general_purpose::STANDARD.encode(&png),
            "digest": format!("{:016x}", fnv1a(&png)),
            "messages": messages,
            "seconds": seconds,
        }),
    ))
}

fn save(tuner: &Tuner, body: &[u8]) -> Result<Resp> {
    let req: SaveRequest = serde_json::from_slice(body).context("save request")?;
    let (image, pipeline) = tuner.save(&req)?;
    Ok(json_response(
        200,
        &json!({ "image": image.display().to_string(), "pipeline": pipeline.display().to_string() }),
    ))
}

/// A short digest of a render, so the page (and its test) can tell
/// whether the preview changed.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

type Resp = Response<std::io::Cursor<Vec<u8>>>;

fn typed(status: u16, body: Vec<u8>, content_type: &str) -> Resp {
    let mut r = Response::from_data(body).with_status_code(status);
    for (k, v) in [
        ("Content-Type", content_type),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
    ] {
        if let Ok(h) = Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            r.add_header(h);
        }
    }
    r
}

fn text(status: u16, body: &str) -> Resp {
    typed(
        status,
        body.as_bytes().to_vec(),
        "text/plain; charset=utf-8",
    )
}

fn json_response(status: u16, v: &serde_json::Value) -> Resp {
    typed(status, v.to_string().into_bytes(), "application/json")
}

/// A failed request answers 400 with the error chain as text (the page shows it).
fn result(r: Result<Resp>) -> Resp {
    r.unwrap_or_else(|e| text(400, &format!("{e:#}")))
}
