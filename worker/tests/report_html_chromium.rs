//! The HTML of a quarantine report rendered by headless Chromium (Debian's `chromium`): every
//! item and every action link must be visible as a person would see it (laid out with a
//! size, not hidden, not transparent, not clipped, not covered). Skipped with a message when
//! Chromium is not installed (`apt-get install -y chromium`).

use std::path::Path;
use std::process::Command;

use cleanmail_worker::reports::render::{ReportItem, UserReport, render_user_report};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Runs in the page after layout; writes one line per checked element into `#results`.
const HARNESS: &str = r#"
<script>
window.addEventListener('load', function () {
  var out = [];
  var width = document.documentElement.clientWidth;
  function visible(el) {
    var r = el.getBoundingClientRect();
    var s = getComputedStyle(el);
    if (r.width < 4 || r.height < 4) return 'no size';
    if (s.visibility !== 'visible' || s.display === 'none' || parseFloat(s.opacity) < 0.5) return 'hidden';
    if (r.left < 0 || r.right > width + 1) return 'clipped';
    var x = r.left + r.width / 2, y = r.top + r.height / 2;
    var top = document.elementFromPoint(x, y);
    if (!top || !(el === top || el.contains(top) || top.contains(el))) return 'covered';
    var color = s.color, bg = s.backgroundColor;
    if (color === bg) return 'invisible text';
    return 'ok';
  }
  document.querySelectorAll('tr.item').forEach(function (el) {
    out.push('item ' + el.getAttribute('data-item') + ' ' + visible(el));
  });
  document.querySelectorAll('a.action').forEach(function (el) {
    out.push('link ' + el.getAttribute('href') + ' ' + visible(el) + ' ' + JSON.stringify(el.innerText.trim()));
  });
  var pre = document.createElement('pre');
  pre.id = 'results';
  pre.textContent = out.join('\n');
  document.body.appendChild(pre);
});
</script>
"#;

fn report(language: &str) -> UserReport {
    let items = (1..=4)
        .map(|n| ReportItem {
            id: format!("m{n}"),
            received: format!("2026-11-30 0{n}:15"),
            sender: format!("A very long sender display name number {n} <bulk-sender-{n}@a-rather-long-domain.example>"),
            subject: format!("Subject {n}: {}", "a long subject line ".repeat(6)),
            category: "spam".to_owned(),
            release_url: format!("https://mail.example/links/release?token=r{n}"),
            delete_url: format!("https://mail.example/links/delete?token=d{n}"),
            allow_sender_url: format!("https://mail.example/links/allow_sender?token=a{n}"),
        })
        .collect();
    UserReport {
        language: language.to_owned(),
        address: "jean@example.ch".to_owned(),
        items,
        more: 0,
        quarantine_url: "https://mail.example/links/quarantine?token=q".to_owned(),
        webmail_url: "https://mail.example/links/webmail?token=w".to_owned(),
        links_expire: "2026-12-07 09:00".to_owned(),
    }
}

fn render_in_chromium(html: &str, dir: &Path, width: u32) -> String {
    let page = html.replace("</body>", &format!("{HARNESS}</body>"));
    let path = dir.join(format!("report-{width}.html"));
    std::fs::write(&path, page).unwrap();
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            &format!("--window-size={width},6000"),
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", path.display()))
        .output()
        .expect("running chromium");
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    let start = dom.find("<pre id=\"results\">").unwrap_or_else(|| {
        panic!(
            "no results in the DOM: {dom}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let rest = &dom[start + "<pre id=\"results\">".len()..];
    rest[..rest.find("</pre>").unwrap()].to_owned()
}

#[test]
fn every_item_and_action_link_is_visible() {
    if !Path::new(CHROMIUM).exists() {
        // Straight to stderr: libtest would capture `eprintln!` of a passing test.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "skipped: report HTML in Chromium: {CHROMIUM} not found (apt-get install -y chromium)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for language in ["en", "de"] {
        let report = report(language);
        let html = render_user_report(&report).html;
        // A desktop window and a phone-sized one.
        for width in [1024, 390] {
            let results = render_in_chromium(&html, dir.path(), width);
            let lines: Vec<&str> = results.lines().collect();
            // 4 items, 3 actions each, plus the quarantine and webmail links.
            assert_eq!(lines.len(), 4 + 4 * 3 + 2, "{results}");
            for item in &report.items {
                assert!(
                    lines.contains(&format!("item {} ok", item.id).as_str()),
                    "{language} {width}px: {results}"
                );
                for url in [&item.release_url, &item.delete_url, &item.allow_sender_url] {
                    assert!(
                        lines
                            .iter()
                            .any(|l| l.starts_with(&format!("link {url} ok "))),
                        "{language} {width}px: {url} not visible: {results}"
                    );
                }
            }
            for url in [&report.quarantine_url, &report.webmail_url] {
                assert!(
                    lines
                        .iter()
                        .any(|l| l.starts_with(&format!("link {url} ok "))),
                    "{results}"
                );
            }
        }
    }
}
