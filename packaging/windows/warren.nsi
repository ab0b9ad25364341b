; Warren's Windows installer (NSIS 3, Modern UI 2). Built by build-installer.sh:
;   makensis -DVERSION=0.1.0 -DSTAGE=dir -DOUTFILE=setup.exe [-DICON=warren.ico] warren.nsi
; STAGE holds warrend.exe, warren.exe, warren-gui.exe, warren-coordinator.exe, wintun.dll, wintun-LICENSE.txt.
;
; Installs to Program Files\Warren, registers the Warren service (warrend --service), puts the
; folder on the system PATH for warren.exe, starts the GUI's tray icon at every user's logon.
; Command line: /S silent, /D=dir install folder, /NOSTART don't start the service now.
; Uninstaller: /S silent (keeps state), /PURGE also delete state in ProgramData\Warren.

; A 64-bit installer: Warren is x86-64 only, so nothing is lost, and a 64-bit process needs
; no WOW64 file-system or registry redirection (the SetRegView 64 below is a no-op kept for
; clarity). It also lets the check run it under a 64-bit-only Wine (Debian's wine64 without
; wine32 cannot run a 32-bit installer at all). Debian's nsis ships the amd64-unicode stubs.
Target amd64-unicode
ManifestDPIAware true
RequestExecutionLevel admin
SetCompressor /SOLID lzma

!ifndef VERSION
  !error "give -DVERSION=x.y.z"
!endif
!ifndef STAGE
  !error "give -DSTAGE=dir with the files to install"
!endif
!ifndef OUTFILE
  !define OUTFILE "warren-${VERSION}-setup.exe"
!endif

!include MUI2.nsh
!include x64.nsh
!include LogicLib.nsh
!include FileFunc.nsh
!include WordFunc.nsh
!include "path.nsh"

!define PRODUCT "Warren"
!define SERVICE "Warren"
!define UNINST_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Warren"
!define RUN_KEY "Software\Microsoft\Windows\CurrentVersion\Run"

; VIProductVersion wants four numbers: "0.1.0-rc.1" gives 0.1.0.0.
!searchparse /noerrors "${VERSION}" "" V_MAJ "." V_MIN "." V_PAT
!searchparse /noerrors "${V_PAT}" "" V_PAT "-"
!define /ifndef V_MAJ 0
!define /ifndef V_MIN 0
!define /ifndef V_PAT 0

Name "${PRODUCT} ${VERSION} (beta)"
OutFile "${OUTFILE}"
InstallDir "$PROGRAMFILES64\${PRODUCT}"
BrandingText "${PRODUCT} ${VERSION} (beta)"

VIProductVersion "${V_MAJ}.${V_MIN}.${V_PAT}.0"
VIAddVersionKey "ProductName" "${PRODUCT}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "${PRODUCT} ${VERSION} (beta) Setup"
VIAddVersionKey "CompanyName" "${PRODUCT}"
VIAddVersionKey "LegalCopyright" "Apache-2.0"

!ifdef ICON
  !define MUI_ICON "${ICON}"
  !define MUI_UNICON "${ICON}"
!endif
!define MUI_ABORTWARNING
; Run the tray app de-elevated: Explorer starts it as the logged-on user, not with the
; installer's admin token.
!define MUI_FINISHPAGE_RUN
!define MUI_FINISHPAGE_RUN_TEXT "Start Warren"
!define MUI_FINISHPAGE_RUN_FUNCTION StartGui

!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Var PathAdded

; ---- service helpers (both installer and uninstaller) ----------------------------------

; Stops the service if it exists and waits up to ~15 s for it to reach STOPPED, so its
; executable is no longer locked.
!macro _SERVICE_FUNCS un
Function ${un}StopService
  Push $0
  Push $1
  Push $2
  nsExec::ExecToStack '"$SYSDIR\sc.exe" query ${SERVICE}'
  Pop $0
  Pop $1
  ${If} $0 = 0
    DetailPrint "Stopping the ${SERVICE} service"
    nsExec::ExecToLog '"$SYSDIR\sc.exe" stop ${SERVICE}'
    Pop $0
    StrCpy $2 0
    ${Do}
      nsExec::ExecToStack '"$SYSDIR\sc.exe" query ${SERVICE}'
      Pop $0
      Pop $1
      ; sc's state names are not translated; "STOPPED" is in every language.
      ClearErrors
      ${${un}WordFind} "$1" "STOPPED" "E+1{" $0
      ${IfNotThen} ${Errors} ${|} ${ExitDo} ${|}
      ${If} $2 >= 30
        DetailPrint "The ${SERVICE} service did not stop in 15 s"
        ${ExitDo}
      ${EndIf}
      Sleep 500
      IntOp $2 $2 + 1
    ${Loop}
  ${EndIf}
  Pop $2
  Pop $1
  Pop $0
FunctionEnd

Function ${un}DeleteService
  Push $0
  Push $1
  Call ${un}StopService
  nsExec::ExecToStack '"$SYSDIR\sc.exe" query ${SERVICE}'
  Pop $0
  Pop $1
  ${If} $0 = 0
    nsExec::ExecToLog '"$SYSDIR\sc.exe" delete ${SERVICE}'
    Pop $0
    ${If} $0 <> 0
      DetailPrint "sc delete ${SERVICE} failed ($0)"
    ${EndIf}
  ${EndIf}
  Pop $1
  Pop $0
FunctionEnd

; The tray app holds warren-gui.exe open; it is ended so the file can be replaced or removed.
; Each user's copy starts again at the next logon (the Run value).
Function ${un}StopGui
  Push $0
  nsExec::ExecToLog '"$SYSDIR\taskkill.exe" /F /IM warren-gui.exe'
  Pop $0
  Pop $0
FunctionEnd
!macroend
!insertmacro _SERVICE_FUNCS ""
!insertmacro _SERVICE_FUNCS "un."

Function StartGui
  Exec '"$WINDIR\explorer.exe" "$INSTDIR\warren-gui.exe"'
FunctionEnd

Function .onInit
  ${IfNot} ${RunningX64}
    MessageBox MB_OK|MB_ICONSTOP "Warren needs 64-bit Windows." /SD IDOK
    Abort
  ${EndIf}
  SetRegView 64
  ; An upgrade lands on the earlier install's folder unless /D= chose another one.
  ; (Not InstallDirRegKey: it reads before .onInit, in this 32-bit process's registry view.)
  ReadRegStr $0 HKLM "${UNINST_KEY}" "InstallLocation"
  ${If} $0 != ""
  ${AndIf} $INSTDIR == "$PROGRAMFILES64\${PRODUCT}"
    StrCpy $INSTDIR $0
  ${EndIf}
FunctionEnd

Section "Warren" SecMain
  SectionIn RO
  SetRegView 64
  SetShellVarContext all

  ; Upgrade: the old service and tray app hold the files open.
  Call DeleteService
  Call StopGui

  SetOutPath "$INSTDIR"
  SetOverwrite on
  File "${STAGE}\warrend.exe"
  File "${STAGE}\warren.exe"
  File "${STAGE}\warren-gui.exe"
  ; Hosting a network from this PC: warrend runs the coordinator beside itself.
  File "${STAGE}\warren-coordinator.exe"
  ; warrend loads wintun.dll from its own folder; the prebuilt, signed DLL from wintun.net
  ; may be redistributed only with its license.
  File "${STAGE}\wintun.dll"
  File "${STAGE}\wintun-LICENSE.txt"
  WriteUninstaller "$INSTDIR\uninstall.exe"

  ; ---- service ----
  ; The local API's pipe admits Administrators and the user running this setup (elevated as
  ; themselves): warrend is told that user's name.
  System::Call 'advapi32::GetUserNameW(w .r3, *i ${NSIS_MAX_STRLEN}) i .r4'
  DetailPrint "Registering the ${SERVICE} service (for $3 and Administrators)"
  nsExec::ExecToLog '"$SYSDIR\sc.exe" create ${SERVICE} binPath= "\"$INSTDIR\warrend.exe\" --service --api-user \"$3\"" start= auto DisplayName= "Warren"'
  Pop $0
  ${If} $0 <> 0
    ; 1072: the old service is still marked for deletion (a tool holds a handle to it).
    DetailPrint "sc create ${SERVICE} failed ($0)"
    MessageBox MB_OK|MB_ICONEXCLAMATION "The Warren service could not be registered (error $0). Close the Services window if it is open, then run this setup again, or restart Windows and run it again." /SD IDOK
  ${Else}
    nsExec::ExecToLog '"$SYSDIR\sc.exe" description ${SERVICE} "Warren peer-to-peer VPN: connects this PC to your Warren networks."'
    Pop $0
    nsExec::ExecToLog '"$SYSDIR\sc.exe" failure ${SERVICE} reset= 86400 actions= restart/5000/restart/5000/restart/30000'
    Pop $0
    ${GetParameters} $1
    ClearErrors
    ${GetOptions} $1 "/NOSTART" $2
    ${If} ${Errors}
      DetailPrint "Starting the ${SERVICE} service"
      nsExec::ExecToLog '"$SYSDIR\sc.exe" start ${SERVICE}'
      Pop $0
      ; Not fatal: the service starts at the next boot anyway, and the log shows why.
      ${If} $0 <> 0
        DetailPrint "sc start ${SERVICE} failed ($0); it will start at the next boot"
      ${EndIf}
    ${EndIf}
  ${EndIf}

  ; ---- warren.exe on PATH ----
  ReadRegDWORD $PathAdded HKLM "${UNINST_KEY}" "PathAdded"
  Push "$INSTDIR"
  Call PathAdd
  Pop $0
  ; Remember whether the entry is ours (now or from the install being upgraded), so the
  ; uninstaller never takes away an entry the user had made.
  ${If} $0 = 1
    StrCpy $PathAdded 1
    !insertmacro PATH_BROADCAST
  ${ElseIf} $PathAdded != 1
    StrCpy $PathAdded 0
  ${EndIf}

  ; ---- shortcuts, autostart ----
  CreateShortcut "$SMPROGRAMS\Warren.lnk" "$INSTDIR\warren-gui.exe"
  WriteRegStr HKLM "${RUN_KEY}" "Warren" '"$INSTDIR\warren-gui.exe" --hidden'

  ; ---- Add/Remove Programs ----
  WriteRegStr HKLM "${UNINST_KEY}" "DisplayName" "${PRODUCT} (beta)"
  WriteRegStr HKLM "${UNINST_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKLM "${UNINST_KEY}" "Publisher" "${PRODUCT}"
  WriteRegStr HKLM "${UNINST_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKLM "${UNINST_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegStr HKLM "${UNINST_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${UNINST_KEY}" "DisplayIcon" '"$INSTDIR\uninstall.exe",0'
  WriteRegDWORD HKLM "${UNINST_KEY}" "NoModify" 1
  WriteRegDWORD HKLM "${UNINST_KEY}" "NoRepair" 1
  WriteRegDWORD HKLM "${UNINST_KEY}" "PathAdded" $PathAdded
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  WriteRegDWORD HKLM "${UNINST_KEY}" "EstimatedSize" "$0"
SectionEnd

; ---- uninstaller ---------------------------------------------------------------------

Function un.onInit
  SetRegView 64
FunctionEnd

Section "Uninstall"
  SetRegView 64
  SetShellVarContext all

  Call un.DeleteService
  Call un.StopGui

  Delete "$INSTDIR\warrend.exe"
  Delete "$INSTDIR\warren.exe"
  Delete "$INSTDIR\warren-gui.exe"
  Delete "$INSTDIR\warren-coordinator.exe"
  Delete "$INSTDIR\wintun.dll"
  Delete "$INSTDIR\wintun-LICENSE.txt"
  Delete "$INSTDIR\uninstall.exe"
  ; Only if empty: never delete files someone else put there.
  RMDir "$INSTDIR"

  Delete "$SMPROGRAMS\Warren.lnk"
  DeleteRegValue HKLM "${RUN_KEY}" "Warren"

  ReadRegDWORD $0 HKLM "${UNINST_KEY}" "PathAdded"
  ${If} $0 = 1
    Push "$INSTDIR"
    Call un.PathRemove
    Pop $0
    ${If} $0 > 0
      !insertmacro PATH_BROADCAST
    ${EndIf}
  ${EndIf}
  DeleteRegKey HKLM "${UNINST_KEY}"

  ; State: identity keys and settings in C:\ProgramData\Warren. NSIS has no
  ; $COMMONPROGRAMDATA; with SetShellVarContext all (above), $APPDATA is the all-users
  ; application data folder, which is C:\ProgramData.
  ${If} ${FileExists} "$APPDATA\Warren\*.*"
    ${un.GetParameters} $1
    ClearErrors
    ${un.GetOptions} $1 "/PURGE" $2
    ${If} ${Errors}
      ; Silent: keep (the /SD answer). Asked: Yes (the default button) keeps.
      MessageBox MB_YESNO|MB_ICONQUESTION|MB_DEFBUTTON1 "Keep your Warren identity and settings?$\r$\n$\r$\nYes (recommended): if you install Warren again, this PC comes back as the same device, in the same networks, with the same name.$\r$\n$\r$\nNo: delete them. This PC's identity, its networks and its name are lost; the other members will see it as a new device and it must join again." /SD IDYES IDYES keep
    ${EndIf}
    DetailPrint "Deleting $APPDATA\Warren"
    RMDir /r "$APPDATA\Warren"
    keep:
  ${EndIf}
SectionEnd
