//! Multi-window, multi-burn-rate SLO alerting (Google SRE Workbook, chapter 5).
//!
//! Inputs are *event counts per timestamp* (not cumulative counters): at time
//! `t[i]` there were `total[i]` events of which `good[i]` were good.  A window of
//! length w at `now` covers `now - w < t <= now`.  The burn rate of a window is its
//! error ratio divided by the error budget `1 - objective` (0 when the window has no
//! events).  A window pair fires when both its long and short burn rates are
//! strictly above its factor.  `error_budget_remaining = 1 - bad / (budget * total)`
//! over the budget period (1.0 with no events; negative once overspent).

pub struct Window {
    pub long: f64,
    pub short: f64,
    pub factor: f64,
    pub severity: String,
}

pub struct WindowResult {
    pub long_burn_rate: f64,
    pub short_burn_rate: f64,
    pub firing: bool,
}

pub struct BurnResult {
    pub windows: Vec<WindowResult>,
    pub error_budget_remaining: f64,
    pub now: f64,
}

pub fn default_windows() -> Vec<Window> {
    let w = |long: f64, short: f64, factor: f64, sev: &str| Window {
        long,
        short,
        factor,
        severity: sev.to_string(),
    };
    vec![
        w(3600.0, 300.0, 14.4, "page"),
        w(21600.0, 1800.0, 6.0, "page"),
        w(259200.0, 21600.0, 1.0, "ticket"),
    ]
}

fn window_sums(t: &[f64], good: &[f64], total: &[f64], now: f64, w: f64) -> (f64, f64) {
    let start = now - w;
    let (mut g, mut n) = (0.0, 0.0);
    for i in 0..t.len() {
        if t[i] > start && t[i] <= now {
            g += good[i];
            n += total[i];
        }
    }
    (g, n)
}

fn burn(t: &[f64], good: &[f64], total: &[f64], now: f64, w: f64, budget: f64) -> f64 {
    let (g, n) = window_sums(t, good, total, now, w);
    if n > 0.0 {
        ((n - g) / n) / budget
    } else {
        0.0
    }
}

pub fn burn_rates(
    t: &[f64],
    good: &[f64],
    total: &[f64],
    objective: f64,
    windows: &[Window],
    now: f64,
    budget_period: f64,
) -> BurnResult {
    let budget = 1.0 - objective;
    let results = windows
        .iter()
        .map(|w| {
            let long_burn_rate = burn(t, good, total, now, w.long, budget);
            let short_burn_rate = burn(t, good, total, now, w.short, budget);
            WindowResult {
                long_burn_rate,
                short_burn_rate,
                firing: long_burn_rate > w.factor && short_burn_rate > w.factor,
            }
        })
        .collect();
    let (g, n) = window_sums(t, good, total, now, budget_period);
    let error_budget_remaining = if n > 0.0 {
        1.0 - (n - g) / (budget * n)
    } else {
        1.0
    };
    BurnResult {
        windows: results,
        error_budget_remaining,
        now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_fires_on_heavy_burn() {
        // 1 event/s for 2 hours, 2% errors against a 99.9% objective: burn 20x
        let t: Vec<f64> = (0..7200).map(f64::from).collect();
        let total = vec![1.0; 7200];
        let good: Vec<f64> = (0..7200)
            .map(|i| if i % 50 == 0 { 0.0 } else { 1.0 })
            .collect();
        let r = burn_rates(
            &t,
            &good,
            &total,
            0.999,
            &default_windows(),
            7199.0,
            30.0 * 86400.0,
        );
        assert!((r.windows[0].long_burn_rate - 20.0).abs() < 1e-9);
        assert!(r.windows[0].firing);
        assert!(r.windows[1].firing);
        assert!(r.windows[2].firing);
        assert!(r.error_budget_remaining < 0.0);
    }
}
