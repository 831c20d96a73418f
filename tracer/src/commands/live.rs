//! The terminal of `tracer watch --live`: taken over (raw mode, alternate screen) for the live
//! table, and given back on every way out: `q`, Ctrl-C (a key in raw mode), SIGTERM and a
//! closed terminal (the watch loop stops on them), a panic (ratatui's hook), and any error
//! (the guard's drop).

use std::{
    io::{self, IsTerminal as _},
    time::Duration,
};

use ratatui::{
    crossterm::{
        cursor::Show,
        event::{self, Event, KeyCode, KeyEventKind, KeyModifiers},
        execute,
    },
    DefaultTerminal,
};

use crate::{
    correlate::Container,
    render::live::{self, Totals},
};

/// How often the table is redrawn (and keys read).
pub const REDRAW: Duration = Duration::from_millis(250);

/// The terminal while the live table shows; restored when dropped.
pub struct LiveView {
    terminal: DefaultTerminal,
}

/// Fails, in one line, without a terminal to draw on.
pub fn require_terminal() -> anyhow::Result<()> {
    if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
        anyhow::bail!(
            "--live needs a terminal, and stdin or stdout is not one (without --live the \
             stream and the final table work anywhere)"
        );
    }
    Ok(())
}

impl LiveView {
    /// Takes the terminal over.
    pub fn open() -> anyhow::Result<Self> {
        require_terminal()?;
        let terminal = ratatui::try_init()
            .map_err(|e| anyhow::anyhow!("--live could not set the terminal up: {e}"))?;
        Ok(Self { terminal })
    }

    /// Reads the keys pressed since the last call: true to stop (`q`, Esc, Ctrl-C). An error
    /// when the terminal is gone.
    pub fn stop_asked(&mut self) -> io::Result<bool> {
        while event::poll(Duration::ZERO)? {
            if let Event::Key(k) = event::read()? {
                let ctrl_c =
                    k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
                if k.kind == KeyEventKind::Press
                    && (ctrl_c || matches!(k.code, KeyCode::Char('q') | KeyCode::Esc))
                {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    pub fn draw(
        &mut self,
        containers: &[&Container],
        now_ns: u64,
        totals: Totals,
    ) -> io::Result<()> {
        self.terminal
            .draw(|frame| live::draw(frame, containers, now_ns, totals))
            .map(drop)
    }
}

impl Drop for LiveView {
    fn drop(&mut self) {
        // A closed terminal cannot be restored: nothing to say about it.
        let _ = ratatui::try_restore();
        let _ = execute!(io::stdout(), Show);
    }
}
