//! The tray on Windows: an icon in the notification area (`Shell_NotifyIconW`), owned by a
//! hidden window on a thread of its own with its own message loop. The egui window's event
//! loop (winit, on the main thread) and this one never wait for each other: commands go to the
//! window through [`Commands`], views come here through [`Handle::show`].

use super::{dot_rgba, menu, Commands, Entry, TrayCmd};
use crate::view::{Look, ViewModel};
use std::cell::RefCell;
use std::ptr::{null, null_mut};
use std::sync::{mpsc, Arc, Mutex};
use windows_sys::Win32::Foundation::{HWND, LPARAM, LRESULT, POINT, WPARAM};
use windows_sys::Win32::System::LibraryLoader::GetModuleHandleW;
use windows_sys::Win32::UI::Shell::{
    Shell_NotifyIconW, NIF_ICON, NIF_MESSAGE, NIF_SHOWTIP, NIF_TIP, NIM_ADD, NIM_DELETE,
    NIM_MODIFY, NIM_SETVERSION, NINF_KEY, NIN_SELECT, NOTIFYICONDATAW, NOTIFYICON_VERSION_4,
};
use windows_sys::Win32::UI::WindowsAndMessaging::{
    AppendMenuW, CreateIcon, CreatePopupMenu, CreateWindowExW, DefWindowProcW, DestroyIcon,
    DestroyMenu, DispatchMessageW, GetCursorPos, GetMessageW, GetSystemMetrics, KillTimer,
    PostMessageW, RegisterClassW, RegisterWindowMessageW, SetForegroundWindow, SetMenuDefaultItem,
    SetTimer, TrackPopupMenu, TranslateMessage, HICON, HMENU, MF_GRAYED, MF_POPUP, MF_SEPARATOR,
    MF_STRING, MSG, SM_CXSMICON, TPM_NONOTIFY, TPM_RETURNCMD, TPM_RIGHTBUTTON, WM_APP,
    WM_CONTEXTMENU, WM_LBUTTONUP, WM_NULL, WM_RBUTTONUP, WM_TIMER, WNDCLASSW, WS_EX_TOOLWINDOW,
    WS_OVERLAPPED,
};

/// What the shell sends about the icon (clicks, keys).
const WM_TRAY: u32 = WM_APP + 1;
/// "A new view is in the handle": from the thread that follows the daemon.
const WM_VIEW: u32 = WM_APP + 2;
/// The one icon of the tray window.
const ICON_ID: u32 = 1;
/// Retries adding the icon while the taskbar refuses it (at sign-in it may be busy).
const RETRY_TIMER: usize = 1;
const RETRY_MS: u32 = 5_000;

/// The running tray; clones share it, from any thread.
#[derive(Clone)]
pub struct Handle {
    /// The tray window as a number: `HWND` is a pointer, not `Send`, while `PostMessageW` and
    /// `Shell_NotifyIconW` take it from any thread.
    hwnd: isize,
    view: Arc<Mutex<ViewModel>>,
}

/// Starts the tray thread and waits until its window exists. A taskbar that does not take the
/// icon yet is no error: the window hears [`TrayCmd::HostOnline`]`(false)` and the icon comes
/// when the taskbar does.
pub fn spawn(view: ViewModel, commands: Commands) -> Result<Handle, String> {
    let view = Arc::new(Mutex::new(view));
    let (ready_tx, ready_rx) = mpsc::channel();
    let thread_view = view.clone();
    std::thread::Builder::new()
        .name("tray".into())
        .spawn(move || run(thread_view, commands, ready_tx))
        .map_err(|e| e.to_string())?;
    let hwnd = ready_rx
        .recv()
        .map_err(|_| "the tray's thread ended".to_string())??;
    Ok(Handle { hwnd, view })
}

impl Handle {
    /// Shows `view`: the icon's colour and tooltip now, the menu when it next opens.
    pub fn show(&self, view: ViewModel) {
        *self.view.lock().unwrap() = view;
        // SAFETY: posting to a window that may be gone merely fails.
        unsafe { PostMessageW(self.hwnd as HWND, WM_VIEW, 0, 0) };
    }

    /// Takes the icon away before the process ends: Windows leaves the icon of an ended
    /// process in the notification area until the mouse passes over it.
    pub fn close(&self) {
        let nid = notify_data(self.hwnd as HWND);
        // SAFETY: `nid` is a valid NOTIFYICONDATAW that outlives the call.
        unsafe { Shell_NotifyIconW(NIM_DELETE, &nid) };
    }
}

/// The tray thread's own state, read by its window procedure.
struct State {
    view: Arc<Mutex<ViewModel>>,
    commands: Commands,
    /// What the window believes: the icon is in the notification area.
    shown: bool,
    /// The shell speaks NOTIFYICON_VERSION_4 (selection and context-menu events rather than
    /// raw mouse messages).
    v4: bool,
    look: Look,
    icon: HICON,
    /// The message Explorer broadcasts when it (re)starts: every icon must be added again.
    taskbar_created: u32,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> Option<R> {
    // Never held across a call that runs the message loop (TrackPopupMenu), which re-enters
    // the window procedure.
    STATE.with_borrow_mut(|s| s.as_mut().map(f))
}

fn run(
    view: Arc<Mutex<ViewModel>>,
    commands: Commands,
    ready: mpsc::Sender<Result<isize, String>>,
) {
    let hwnd = match create_window() {
        Ok(h) => h,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let look = view.lock().unwrap().look;
    let state = State {
        view,
        commands,
        shown: true,
        v4: false,
        look,
        icon: dot_icon(look),
        // SAFETY: a NUL-terminated UTF-16 string.
        taskbar_created: unsafe { RegisterWindowMessageW(wide("TaskbarCreated").as_ptr()) },
    };
    STATE.with_borrow_mut(|s| *s = Some(state));
    let _ = ready.send(Ok(hwnd as isize));
    add_icon(hwnd);
    // SAFETY: MSG is plain data; the loop ends when GetMessageW fails or sees WM_QUIT.
    unsafe {
        let mut msg: MSG = std::mem::zeroed();
        while GetMessageW(&mut msg, null_mut(), 0, 0) > 0 {
            TranslateMessage(&msg);
            DispatchMessageW(&msg);
        }
    }
}

/// A top-level window that is never shown: a message-only window would not hear the
/// TaskbarCreated broadcast.
fn create_window() -> Result<HWND, String> {
    let class = wide("WarrenTray");
    // SAFETY: the class name and title outlive the calls; the window procedure is 'static.
    unsafe {
        let instance = GetModuleHandleW(null());
        let wc = WNDCLASSW {
            lpfnWndProc: Some(window_proc),
            hInstance: instance,
            lpszClassName: class.as_ptr(),
            ..Default::default()
        };
        if RegisterClassW(&wc) == 0 {
            return Err(format!(
                "cannot register the tray's window class: {}",
                std::io::Error::last_os_error()
            ));
        }
        let hwnd = CreateWindowExW(
            WS_EX_TOOLWINDOW,
            class.as_ptr(),
            wide("Warren").as_ptr(),
            WS_OVERLAPPED,
            0,
            0,
            0,
            0,
            null_mut(),
            null_mut(),
            instance,
            null(),
        );
        if hwnd.is_null() {
            return Err(format!(
                "cannot make the tray's window: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(hwnd)
    }
}

unsafe extern "system" fn window_proc(
    hwnd: HWND,
    msg: u32,
    wparam: WPARAM,
    lparam: LPARAM,
) -> LRESULT {
    match msg {
        WM_TRAY => {
            clicked(hwnd, wparam, lparam);
            0
        }
        WM_VIEW => {
            refresh(hwnd);
            0
        }
        WM_TIMER if wparam == RETRY_TIMER => {
            add_icon(hwnd);
            0
        }
        _ if Some(msg) == with_state(|s| s.taskbar_created) => {
            add_icon(hwnd);
            0
        }
        // SAFETY: the arguments are the ones Windows passed in.
        _ => unsafe { DefWindowProcW(hwnd, msg, wparam, lparam) },
    }
}

/// A click or key on the icon: open the window, or show the menu.
fn clicked(hwnd: HWND, wparam: WPARAM, lparam: LPARAM) {
    let Some(v4) = with_state(|s| s.v4) else {
        return;
    };
    // Version 4 puts the event in the low word and the anchor point in `wparam`; the old
    // protocol sends the mouse message alone (and the cursor is where it happened).
    let event = (lparam & 0xffff) as u32;
    let open = if v4 {
        event == NIN_SELECT || event == NIN_SELECT | NINF_KEY
    } else {
        event == WM_LBUTTONUP
    };
    if open {
        send(TrayCmd::Open);
    } else if v4 && event == WM_CONTEXTMENU {
        let x = (wparam & 0xffff) as u16 as i16 as i32;
        let y = ((wparam >> 16) & 0xffff) as u16 as i16 as i32;
        popup(hwnd, x, y);
    } else if !v4 && event == WM_RBUTTONUP {
        let mut at = POINT { x: 0, y: 0 };
        // SAFETY: `at` is a valid POINT.
        unsafe { GetCursorPos(&mut at) };
        popup(hwnd, at.x, at.y);
    }
}

fn send(cmd: TrayCmd) {
    if let Some(commands) = with_state(|s| s.commands.clone()) {
        commands.send(cmd);
    }
}

/// The menu at (`x`, `y`); the chosen line's command goes to the window.
fn popup(hwnd: HWND, x: i32, y: i32) {
    let Some(entries) = with_state(|s| menu(&s.view.lock().unwrap())) else {
        return;
    };
    let mut cmds = Vec::new();
    let hmenu = build_menu(&entries, &mut cmds);
    // Every entry is one line of the top level, so its index is its position there.
    let open = entries
        .iter()
        .position(|e| matches!(e, Entry::Item(_, TrayCmd::Open)));
    // SAFETY: `hmenu` is the menu built above, destroyed (with its submenus) once chosen from.
    let chosen = unsafe {
        if let Some(position) = open {
            // "Open Warren" in bold: what a click on the icon does.
            SetMenuDefaultItem(hmenu, position as u32, 1);
        }
        // Without it the menu stays open when the person clicks elsewhere.
        SetForegroundWindow(hwnd);
        let chosen = TrackPopupMenu(
            hmenu,
            TPM_RETURNCMD | TPM_NONOTIFY | TPM_RIGHTBUTTON,
            x,
            y,
            0,
            hwnd,
            null(),
        );
        // Lets the menu open again on the next click (documented with TrackPopupMenu).
        PostMessageW(hwnd, WM_NULL, 0, 0);
        DestroyMenu(hmenu);
        chosen
    };
    if let Some(cmd) = command_for(&cmds, chosen) {
        send(cmd);
    }
}

/// The command of menu id `chosen` (0: nothing chosen).
fn command_for(cmds: &[TrayCmd], chosen: i32) -> Option<TrayCmd> {
    let index = usize::try_from(chosen).ok()?.checked_sub(1)?;
    cmds.get(index).copied()
}

/// A Win32 popup menu for `entries`; each item's id is its place in `cmds` plus one.
fn build_menu(entries: &[Entry], cmds: &mut Vec<TrayCmd>) -> HMENU {
    // SAFETY: the labels outlive the calls (AppendMenuW copies them).
    unsafe {
        let hmenu = CreatePopupMenu();
        for e in entries {
            match e {
                Entry::Text(l) => {
                    AppendMenuW(hmenu, MF_STRING | MF_GRAYED, 0, menu_label(l).as_ptr());
                }
                Entry::Item(l, cmd) => {
                    cmds.push(*cmd);
                    AppendMenuW(hmenu, MF_STRING, cmds.len(), menu_label(l).as_ptr());
                }
                Entry::Separator => {
                    AppendMenuW(hmenu, MF_SEPARATOR, 0, null());
                }
                Entry::Sub(l, sub) => {
                    let submenu = build_menu(sub, cmds);
                    AppendMenuW(
                        hmenu,
                        MF_STRING | MF_POPUP,
                        submenu as usize,
                        menu_label(l).as_ptr(),
                    );
                }
            }
        }
        hmenu
    }
}

/// Adds the icon (again, after Explorer restarted); tells the window when that changes
/// whether there is an icon to open it from, and retries while the taskbar refuses.
fn add_icon(hwnd: HWND) {
    let Some((icon, tip)) = with_state(|s| (s.icon, tip(&s.view.lock().unwrap()))) else {
        return;
    };
    let mut nid = notify_data(hwnd);
    nid.uFlags = NIF_MESSAGE | NIF_ICON | NIF_TIP | NIF_SHOWTIP;
    nid.uCallbackMessage = WM_TRAY;
    nid.hIcon = icon;
    nid.szTip = tip;
    // SAFETY: `nid` is a valid NOTIFYICONDATAW that outlives the calls.
    let (added, v4) = unsafe {
        // A taskbar that kept the icon (TaskbarCreated also comes on a DPI change) refuses
        // to add it twice.
        let added =
            Shell_NotifyIconW(NIM_ADD, &nid) != 0 || Shell_NotifyIconW(NIM_MODIFY, &nid) != 0;
        nid.Anonymous.uVersion = NOTIFYICON_VERSION_4;
        (added, added && Shell_NotifyIconW(NIM_SETVERSION, &nid) != 0)
    };
    let changed = with_state(|s| {
        s.v4 = v4;
        std::mem::replace(&mut s.shown, added) != added
    });
    // SAFETY: the timer belongs to this thread's window.
    unsafe {
        if added {
            KillTimer(hwnd, RETRY_TIMER);
        } else {
            SetTimer(hwnd, RETRY_TIMER, RETRY_MS, None);
        }
    }
    if changed == Some(true) {
        send(TrayCmd::HostOnline(added));
    }
}

/// The icon and tooltip follow the view.
fn refresh(hwnd: HWND) {
    let Some((look, tip, old_look, shown)) = with_state(|s| {
        let view = s.view.lock().unwrap();
        (view.look, tip(&view), s.look, s.shown)
    }) else {
        return;
    };
    let mut nid = notify_data(hwnd);
    nid.uFlags = NIF_TIP | NIF_SHOWTIP;
    nid.szTip = tip;
    let mut old_icon = None;
    if look != old_look {
        let icon = dot_icon(look);
        nid.uFlags |= NIF_ICON;
        nid.hIcon = icon;
        old_icon = with_state(|s| {
            s.look = look;
            std::mem::replace(&mut s.icon, icon)
        });
    }
    // SAFETY: `nid` is valid; the old icon is no longer the taskbar's once it has the new one.
    unsafe {
        if shown {
            Shell_NotifyIconW(NIM_MODIFY, &nid);
        }
        if let Some(old) = old_icon {
            DestroyIcon(old);
        }
    }
}

fn notify_data(hwnd: HWND) -> NOTIFYICONDATAW {
    NOTIFYICONDATAW {
        cbSize: std::mem::size_of::<NOTIFYICONDATAW>() as u32,
        hWnd: hwnd,
        uID: ICON_ID,
        ..Default::default()
    }
}

/// The dot at the size of a small icon on this screen.
fn dot_icon(look: Look) -> HICON {
    // SAFETY: plain metrics query.
    let size = unsafe { GetSystemMetrics(SM_CXSMICON) }.clamp(16, 256) as u32;
    let bgra: Vec<u8> = dot_rgba(look, size)
        .chunks_exact(4)
        .flat_map(|p| [p[2], p[1], p[0], p[3]])
        .collect();
    // All zero: the colour bitmap's alpha alone decides what shows. Rows are whole words.
    let mask = vec![0u8; size.div_ceil(16) as usize * 2 * size as usize];
    // SAFETY: both bitmaps hold `size` rows of the sizes CreateIcon reads.
    unsafe {
        CreateIcon(
            GetModuleHandleW(null()),
            size as i32,
            size as i32,
            1,
            32,
            mask.as_ptr(),
            bgra.as_ptr(),
        )
    }
}

/// The tooltip: "Warren" and the headline, cut to the 127 characters the shell keeps (never
/// inside a character).
fn tip(view: &ViewModel) -> [u16; 128] {
    let mut out = [0u16; 128];
    let mut len = 0;
    for c in format!("Warren\n{}", view.headline).chars() {
        let mut buf = [0u16; 2];
        let units = c.encode_utf16(&mut buf);
        if len + units.len() > out.len() - 1 {
            break;
        }
        out[len..len + units.len()].copy_from_slice(units);
        len += units.len();
    }
    out
}

/// A menu line: `&` marks a keyboard shortcut in Win32 menus, so a name's own `&` is doubled.
fn menu_label(s: &str) -> Vec<u16> {
    wide(&s.replace('&', "&&"))
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(Some(0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{model, Link, UiState};

    #[test]
    fn the_tooltip_is_cut_whole_characters_short_of_the_shells_limit() {
        let mut view = model(&Link::Missing("x".into()), &UiState::default());
        view.headline = "🙂".repeat(100);
        let t = tip(&view);
        let len = t.iter().position(|&u| u == 0).unwrap();
        assert!(len <= 127);
        let text = String::from_utf16(&t[..len]).expect("no half character");
        assert!(text.starts_with("Warren\n🙂"));
        assert_eq!(len, 7 + 60 * 2, "as many whole smileys as fit");
    }

    #[test]
    fn ampersands_show_as_themselves() {
        assert_eq!(menu_label("R&D"), wide("R&&D"));
    }

    #[test]
    fn menu_ids_lead_back_to_their_commands() {
        let entries = vec![
            Entry::Item("a".into(), TrayCmd::Power(true)),
            Entry::Sub(
                "net".into(),
                vec![
                    Entry::Text("t".into()),
                    Entry::Item("ask".into(), TrayCmd::Open),
                ],
            ),
            Entry::Item("Open".into(), TrayCmd::Open),
            Entry::Item("Quit".into(), TrayCmd::Quit),
        ];
        let mut cmds = Vec::new();
        let hmenu = build_menu(&entries, &mut cmds);
        // SAFETY: the menu just built.
        unsafe { DestroyMenu(hmenu) };
        assert_eq!(
            cmds,
            [
                TrayCmd::Power(true),
                TrayCmd::Open,
                TrayCmd::Open,
                TrayCmd::Quit
            ]
        );
        assert_eq!(command_for(&cmds, 0), None, "nothing chosen");
        assert_eq!(command_for(&cmds, 4), Some(TrayCmd::Quit));
        assert_eq!(command_for(&cmds, 5), None);
    }
}
