; Adds a directory to / removes it from the system PATH (HKLM ...\Session Manager\Environment,
; value Path) with only the stock System plugin.
;
; Why native memory and not NSIS strings: this makensis has NSIS_MAX_STRLEN=1024, and a PATH is
; often longer. ReadRegStr would truncate it and writing it back would destroy the user's PATH
; (the classic EnvVarUpdate bug). So the value is read into a buffer of its own size, searched
; with StrStrIW (case-insensitive, like Windows paths) and edited there; no NSIS variable ever
; holds the whole PATH.
;
; Entries are matched whole: ";dir;" inside ";PATH;", so C:\Foo\Warren2 never matches C:\Foo\Warren.
;
; Usage: Push "dir" / Call PathAdd / Pop $0        $0 = 1 added, 0 already there, -1 failed
;        Push "dir" / Call un.PathRemove / Pop $0  $0 = number of entries removed, -1 failed

!include LogicLib.nsh
!include WinMessages.nsh

!define /ifndef PATH_HKLM 0x80000002
; KEY_READ | KEY_WRITE | KEY_WOW64_64KEY: the installer is a 32-bit process and the
; environment key is shared anyway, but ask for the 64-bit view to be explicit.
!define /ifndef PATH_ACCESS 0x2011F
!define /ifndef PATH_KEY "SYSTEM\CurrentControlSet\Control\Session Manager\Environment"
!define /ifndef REG_EXPAND_SZ 2

; Opens the key and reads Path into a buffer "; value ;" with spare room.
; In: $0 dir. Out: $1 hkey (0 on failure), $4 buffer, $5 chars of dir, $R1 set to 1 on failure.
!macro _PATH_READ
  StrCpy $R1 0
  StrLen $5 $0
  System::Call 'advapi32::RegOpenKeyExW(p ${PATH_HKLM}, w "${PATH_KEY}", i 0, i ${PATH_ACCESS}, *p .r1) i .r2'
  ${If} $2 <> 0
    DetailPrint "PATH: cannot open the environment key (error $2)"
    StrCpy $1 0
    StrCpy $R1 1
  ${Else}
    ; $3 = size in bytes of the current value (0 if there is none)
    System::Call 'advapi32::RegQueryValueExW(p r1, w "Path", p 0, *i .r6, p 0, *i .r3) i .r2'
    ${If} $2 = 2 ; ERROR_FILE_NOT_FOUND: no Path value yet
      StrCpy $3 0
      StrCpy $6 ${REG_EXPAND_SZ}
    ${ElseIf} $2 <> 0
      DetailPrint "PATH: cannot read Path (error $2)"
      StrCpy $R1 1
    ${ElseIf} $6 <> 1
    ${AndIf} $6 <> ${REG_EXPAND_SZ}
      DetailPrint "PATH: Path has registry type $6, not a string; left alone"
      StrCpy $R1 1
    ${EndIf}
  ${EndIf}
  ${If} $R1 = 0
    ; ";" + value + ";" + NUL, + room for ";" + dir, + slack for a value stored without NUL
    IntOp $7 $5 + 8
    IntOp $7 $7 * 2
    IntOp $7 $7 + $3
    System::Alloc $7
    Pop $4
    ; System::Alloc zero-fills (GlobalAlloc GPTR), so the data read at $4+2 ends in NULs.
    System::Call '*$4(&w1 ";")'
    IntPtrOp $8 $4 + 2
    ${If} $3 > 0
      System::Call 'advapi32::RegQueryValueExW(p r1, w "Path", p 0, p 0, p r8, *i r3 r3) i .r2'
      ${If} $2 <> 0
        DetailPrint "PATH: cannot read Path (error $2)"
        StrCpy $R1 1
      ${EndIf}
    ${EndIf}
    System::Call 'kernel32::lstrcatW(p r4, w ";")'
  ${EndIf}
!macroend

; Writes the buffer's inner part (without the first and last ";" we put around it) back.
; In: $1 hkey, $4 buffer. Sets $R1 to 1 on failure.
!macro _PATH_WRITE
  System::Call 'kernel32::lstrlenW(p r4) i .r7'
  ; drop the closing ";" we added
  IntOp $8 $7 - 1
  IntOp $8 $8 * 2
  IntPtrOp $8 $4 + $8
  System::Call '*$8(&i2 0)'
  IntOp $7 $7 - 1 ; chars left, including the opening ";"
  ; the value starts after the opening ";"; bytes = (chars - 1 + NUL) * 2
  IntOp $9 $7 * 2
  IntPtrOp $8 $4 + 2
  System::Call 'advapi32::RegSetValueExW(p r1, w "Path", i 0, i ${REG_EXPAND_SZ}, p r8, i r9) i .r2'
  ${If} $2 <> 0
    DetailPrint "PATH: cannot write Path (error $2)"
    StrCpy $R1 1
  ${EndIf}
!macroend

!macro _PATH_ADD un
Function ${un}PathAdd
  Exch $0
  Push $1
  Push $2
  Push $3
  Push $4
  Push $5
  Push $6
  Push $7
  Push $8
  Push $9
  Push $R1
  Push $R2
  StrCpy $R2 -1
  StrCpy $4 0
  !insertmacro _PATH_READ
  ${If} $R1 = 0
    ; strings go through registers: a directory may contain ( ) , which System would parse
    StrCpy $9 ";$0;"
    System::Call 'shlwapi::StrStrIW(p r4, w r9) p .r2'
    ${If} $2 P<> 0
      StrCpy $R2 0
      DetailPrint "PATH already has $0"
    ${Else}
      ; "; value ;" already ends in the ";" that separates the new entry, unless the value
      ; itself ended in ";" (then there is ";;": drop one).
      System::Call 'kernel32::lstrlenW(p r4) i .r7'
      ${If} $7 >= 2
        IntOp $8 $7 - 2
        IntOp $8 $8 * 2
        IntPtrOp $8 $4 + $8
        System::Call '*$8(&w1 .r9)'
        ${If} $9 == ";"
        ${OrIf} $7 = 2 ; empty value: "; ;" is ";;"
          IntOp $8 $7 - 1
          IntOp $8 $8 * 2
          IntPtrOp $8 $4 + $8
          System::Call '*$8(&i2 0)'
        ${EndIf}
      ${EndIf}
      StrCpy $9 "$0;"
      System::Call 'kernel32::lstrcatW(p r4, w r9)'
      !insertmacro _PATH_WRITE
      ${If} $R1 = 0
        StrCpy $R2 1
        DetailPrint "PATH: added $0"
      ${EndIf}
    ${EndIf}
  ${EndIf}
  ${If} $4 P<> 0
    System::Free $4
  ${EndIf}
  ${If} $1 P<> 0
    System::Call 'advapi32::RegCloseKey(p r1)'
  ${EndIf}
  StrCpy $0 $R2
  Pop $R2
  Pop $R1
  Pop $9
  Pop $8
  Pop $7
  Pop $6
  Pop $5
  Pop $4
  Pop $3
  Pop $2
  Pop $1
  Exch $0
FunctionEnd
!macroend

!macro _PATH_REMOVE un
Function ${un}PathRemove
  Exch $0
  Push $1
  Push $2
  Push $3
  Push $4
  Push $5
  Push $6
  Push $7
  Push $8
  Push $9
  Push $R1
  Push $R2
  StrCpy $R2 -1
  StrCpy $4 0
  !insertmacro _PATH_READ
  ${If} $R1 = 0
    StrCpy $R2 0
    ; cut ";dir" out of every ";dir;", keeping the following ";"
    IntOp $5 $5 + 1
    IntOp $5 $5 * 2 ; bytes of ";dir"
    StrCpy $6 ";$0;"
    ${Do}
      System::Call 'shlwapi::StrStrIW(p r4, w r6) p .r2'
      ${IfThen} $2 P= 0 ${|} ${ExitDo} ${|}
      IntPtrOp $8 $2 + $5
      System::Call 'kernel32::lstrlenW(p r8) i .r9'
      IntOp $9 $9 + 1
      IntOp $9 $9 * 2
      System::Call 'kernel32::RtlMoveMemory(p r2, p r8, p r9)'
      IntOp $R2 $R2 + 1
    ${Loop}
    ${If} $R2 > 0
      !insertmacro _PATH_WRITE
      ${If} $R1 = 0
        DetailPrint "PATH: removed $0"
      ${Else}
        StrCpy $R2 -1
      ${EndIf}
    ${EndIf}
  ${EndIf}
  ${If} $4 P<> 0
    System::Free $4
  ${EndIf}
  ${If} $1 P<> 0
    System::Call 'advapi32::RegCloseKey(p r1)'
  ${EndIf}
  StrCpy $0 $R2
  Pop $R2
  Pop $R1
  Pop $9
  Pop $8
  Pop $7
  Pop $6
  Pop $5
  Pop $4
  Pop $3
  Pop $2
  Pop $1
  Exch $0
FunctionEnd
!macroend

; Only what is used: makensis warns about (and zeroes out) functions nobody calls.
!insertmacro _PATH_ADD ""
!insertmacro _PATH_REMOVE "un."

; Tells running programs (Explorer, new shells) that the environment changed.
!macro PATH_BROADCAST
  SendMessage ${HWND_BROADCAST} ${WM_SETTINGCHANGE} 0 "STR:Environment" /TIMEOUT=5000
!macroend
