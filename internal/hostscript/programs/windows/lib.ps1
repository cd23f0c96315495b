# ---- lib.ps1: shared by every Passport Windows program ----------------------
# Windows PowerShell 5.1. Request data is never evaluated as code: it is
# decoded from $PassportData, checked against the patterns below and only
# ever passed as a typed parameter value or an argument array element.
Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

# Exit codes (mirrored by the Go package; keep both in step).
$ExFailed = 1    # a step failed unexpectedly
$ExData = 2      # the data block was refused; nothing was changed
$ExHost = 3      # the host cannot hold Passport users (domain controller, ...)
$ExConflict = 4  # the user exists but is not this Passport grant's
$ExNotFound = 5  # extend: no such Passport user
$ExPassword = 9  # the host's password policy refused the generated password

# Validation patterns (whole value, case-sensitive, .NET regex). The Go
# package applies the same rules before it encodes.
$ReUser = '[a-z][a-z0-9-]{0,19}'
$ReRequest = '[A-Za-z0-9][A-Za-z0-9._-]{0,63}'
$ReRequester = '[A-Za-z0-9][A-Za-z0-9._@+:-]{0,127}'
$ReEpoch = '[1-9][0-9]{0,10}'
$ReBool = '0|1'
$ReSealN = '[A-Za-z0-9_-]+'
$ReSealE = 'AQAB'

$PassportGroup = 'Passport Users'
$PassportGroupDescription = 'Managed by Passport: short-lived access users. Do not add members by hand.'
$PassportKey = 'HKLM:\SOFTWARE\Passport'
$PassportGrants = 'HKLM:\SOFTWARE\Passport\Grants'
$PassportDir = 'C:\ProgramData\Passport'
$PassportSweepPath = 'C:\ProgramData\Passport\sweep.ps1'
$PassportTask = 'Passport Sweep'
# Built-in groups by well-known SID: their names are localized.
$SidAdministrators = 'S-1-5-32-544'
$SidRemoteDesktopUsers = 'S-1-5-32-555'
$SidSystem = 'S-1-5-18'
$PassportAlphabet = 'ABCDEFGHJKLMNPQRSTUVWXabcdefghijkmnpqrstuvwx23456789!#*+-./?@_~'

$script:Step = 'start'
$script:ExitCode = 0
$script:Done = $false

# Write-PassportResult prints the one line the Go side parses: on stdout,
# but on stderr for collect, whose stdout is the events the agent writes to
# S3 (and which may be longer than the API returns).
function Write-PassportResult([string]$Status, [string[]]$Pairs) {
	$line = 'passport-result action=' + $PassportAction + ' status=' + $Status
	foreach ($p in $Pairs) { $line = $line + ' ' + $p }
	if ($PassportAction -ceq 'collect') {
		[Console]::Error.WriteLine($line)
	} else {
		[Console]::Out.WriteLine($line)
	}
	$script:Done = $true
}

# Stop-Passport names the failing step on stderr and ends the program with
# the given exit code (the footer prints the error result line).
function Stop-Passport([int]$Code, [string]$Message) {
	$script:ExitCode = $Code
	[Console]::Error.WriteLine('passport: ' + $PassportAction + ': step ' + $script:Step + ': ' + $Message)
	throw 'passport-stop'
}

function Test-PassportValue([string]$Value, [string]$Pattern) {
	return $Value -cmatch ('^(?:' + $Pattern + ')\z')
}

# Read-PassportData decodes the data block into an ordered table and checks
# that it holds exactly the expected fields, in order, each matching its
# pattern. It is the only reader of $PassportData.
function Read-PassportData([string[]]$Names, [string[]]$Patterns) {
	$script:Step = 'data'
	if (-not ($PassportData -cmatch '^[A-Za-z0-9+/]*={0,2}\z')) { Stop-Passport $ExData 'data block is not base64' }
	try {
		$text = [System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String($PassportData))
	} catch {
		Stop-Passport $ExData 'data block does not decode'
	}
	if (-not $text.EndsWith([string][char]10)) { Stop-Passport $ExData 'data block does not end with a newline' }
	$lines = $text.Substring(0, $text.Length - 1).Split([char]10)
	if ($lines.Count -ne $Names.Count + 1 -or $lines[0] -cne 'format=1') { Stop-Passport $ExData 'data block has the wrong format or field count' }
	$fields = @{}
	for ($i = 0; $i -lt $Names.Count; $i++) {
		$line = $lines[$i + 1]
		$eq = $line.IndexOf('=')
		if ($eq -lt 0 -or $line.Substring(0, $eq) -cne $Names[$i]) { Stop-Passport $ExData ('field ' + $Names[$i] + ' missing') }
		$value = $line.Substring($eq + 1)
		if (-not (Test-PassportValue $value $Patterns[$i])) { Stop-Passport $ExData ('field ' + $Names[$i] + ' refused') }
		$fields[$Names[$i]] = $value
	}
	if ($fields['action'] -cne $PassportAction) { Stop-Passport $ExData 'field action does not match the program' }
	return $fields
}

function ConvertFrom-PassportEpoch([string]$Seconds) {
	return [System.DateTimeOffset]::FromUnixTimeSeconds([long]$Seconds).LocalDateTime
}

function Assert-NotDomainController {
	$script:Step = 'host'
	$role = (Get-CimInstance -ClassName Win32_ComputerSystem).DomainRole
	if ($role -ge 4) { Stop-Passport $ExHost 'domain controller: no local users; Passport grants Windows access on member servers and workstations only' }
}

function Get-PassportUser([string]$Name) {
	return Get-LocalUser | Where-Object { $_.Name -eq $Name } | Select-Object -First 1
}

# Test-PassportMember reports whether the user is in Passport's group, and
# the group is Passport's own.
function Test-PassportMember($User) {
	if (-not (Test-PassportGroupOwned)) { return $false }
	$members = @(Get-LocalGroupMember -Name $PassportGroup | Where-Object { $_.SID -eq $User.SID })
	return $members.Count -gt 0
}

function Test-PassportGroupOwned {
	$g = Get-LocalGroup | Where-Object { $_.Name -eq $PassportGroup } | Select-Object -First 1
	if ($null -eq $g) { return $false }
	$mark = Get-ItemProperty -Path $PassportKey -Name 'GroupCreated' -ErrorAction SilentlyContinue
	return ($null -ne $mark) -and ($mark.GroupCreated -eq 1)
}

# Get-PassportRecordValue returns one value of a grant record as a string,
# or '' when the record or the value is missing (StrictMode would throw).
function Get-PassportRecordValue($Record, [string]$Value) {
	if ($null -eq $Record) { return '' }
	$prop = $Record.PSObject.Properties[$Value]
	if ($null -eq $prop) { return '' }
	return [string]$prop.Value
}

# Get-PassportRecord returns the grant record's values, or $null.
function Get-PassportRecord([string]$Name) {
	$path = $PassportGrants + '\' + $Name
	if (-not (Test-Path -LiteralPath $path)) { return $null }
	return Get-ItemProperty -LiteralPath $path
}

# Remove-PassportUser logs the user's sessions off, removes its scheduled
# tasks and ends its other processes, removes its profile
# (through Win32_UserProfile, which copes with long paths), its group
# memberships, the account and the record.
function Remove-PassportUser($User, [string]$Name) {
	$script:Step = 'logoff'
	$out = @()
	try { $out = @(& quser.exe 2>$null) } catch { $out = @() }
	foreach ($line in $out) {
		$cols = @(([string]$line).Trim().TrimStart('>').Split([char[]]@([char]32, [char]9), [System.StringSplitOptions]::RemoveEmptyEntries))
		if ($cols.Count -lt 3 -or $cols[0] -ne $Name) { continue }
		foreach ($c in $cols[1..($cols.Count - 1)]) {
			if ($c -cmatch '^[0-9]+\z') {
				$sessionId = $c
				try { & logoff.exe $sessionId } catch { [Console]::Error.WriteLine('passport: logoff of one session failed') }
				break
			}
		}
	}
	if ($null -ne $User) {
		$sid = $User.SID.Value
		# What the user started outside its sessions ends too: scheduled
		# tasks that run as it, and processes logoff does not reach (a
		# task's, or one started with runas). Windows never hands a SID out
		# again, so nothing else keyed by it can pass to a later user; the
		# profile goes below.
		$script:Step = 'tasks'
		foreach ($task in @(Get-ScheduledTask)) {
			$runAs = [string]$task.Principal.UserId
			if ($runAs -eq $Name -or $runAs -eq $sid -or $runAs.EndsWith('\' + $Name)) {
				Unregister-ScheduledTask -TaskName $task.TaskName -TaskPath $task.TaskPath -Confirm:$false
			}
		}
		$script:Step = 'processes'
		foreach ($proc in @(Get-CimInstance -ClassName Win32_Process)) {
			$owner = Invoke-CimMethod -InputObject $proc -MethodName GetOwnerSid -ErrorAction SilentlyContinue
			if ($null -ne $owner -and $owner.Sid -eq $sid) { Stop-Process -Id $proc.ProcessId -Force -ErrorAction SilentlyContinue }
		}
		$script:Step = 'groups'
		$groups = @((Get-LocalGroup -SID $SidAdministrators), (Get-LocalGroup -SID $SidRemoteDesktopUsers))
		$groups += @(Get-LocalGroup | Where-Object { $_.Name -eq $PassportGroup })
		foreach ($sidGroup in $groups) {
			if ($null -eq $sidGroup) { continue }
			$m = @(Get-LocalGroupMember -Group $sidGroup | Where-Object { $_.SID -eq $User.SID })
			if ($m.Count -gt 0) { Remove-LocalGroupMember -Group $sidGroup -Member $User }
		}
		$script:Step = 'user'
		Remove-LocalUser -SID $User.SID
		$script:Step = 'profile'
		Get-CimInstance -ClassName Win32_UserProfile | Where-Object { $_.SID -eq $sid } | Remove-CimInstance
	}
	$script:Step = 'record'
	$path = $PassportGrants + '\' + $Name
	if (Test-Path -LiteralPath $path) { Remove-Item -LiteralPath $path -Recurse }
}
