# ---- collect.ps1: hand the user's Security log events over ------------------
# What this is: the Passport user's logons (4624), logoffs (4634) and process
# creations (4688) from the host's Security event log, as JSON lines on
# stdout, which Run Command's S3 output carries to the recordings bucket
# whole. What this is NOT: a screen recording. Nothing of what the person
# saw or typed in a Remote Desktop session is kept; a process's command line
# is all there is of what they ran, and only where Windows audits it.
#
# Windows writes these events only under its audit policy: "Audit Logon"
# and "Audit Logoff" (Logon/Logoff), "Audit Process Creation" (Detailed
# Tracking), and, for command lines, "Include command line in process
# creation events" (ProcessCreationIncludeCmdLine_Enabled). Provision turns
# them on (Enable-PassportAudit); a Group Policy can turn them off again.
# The Security log is Windows' own: Passport never clears it, and what it
# overwrote before a collection is gone.
#
# One line per event:
#   {"time":"<UTC, ISO 8601>","event_id":4624,"logon_id":"0x...",
#    "logon_type":10,"source":"<address>","process":"<image>",
#    "command_line":"<as audited>"}
# The result line goes to stderr, which is all Passport reads from the API.
# Get-PassportEventData returns one EventData field of an event's XML, or
# '' when it is missing or empty. It uses the DOM's methods, not
# PowerShell's XML properties: under StrictMode an empty element (a
# CommandLine Windows did not audit) has no '#text' to read.
function Get-PassportEventData($Xml, [string]$Name) {
	foreach ($d in @($Xml.SelectNodes("//*[local-name()='EventData']/*[local-name()='Data']"))) {
		if ($d.GetAttribute('Name') -ceq $Name) { return [string]$d.InnerText }
	}
	return ''
}

function Invoke-PassportAction {
	$f = Read-PassportData @('action', 'user', 'since') @('collect', $ReUser, $ReEpoch)
	$name = $f['user']
	$since = ConvertFrom-PassportEpoch $f['since']
	$script:Step = 'read'
	$filter = @{ LogName = 'Security'; Id = @(4624, 4634, 4688); StartTime = $since }
	$found = @()
	try {
		$found = @(Get-WinEvent -FilterHashtable $filter -ErrorAction Stop)
	} catch [System.Exception] {
		# Get-WinEvent throws when nothing matches; anything else is a
		# failure the caller must see.
		if ($_.FullyQualifiedErrorId -notlike 'NoMatchingEventsFound*') { throw }
	}
	$script:Step = 'write'
	$out = [Console]::Out
	$count = 0
	$logons = @{}
	# Get-WinEvent returns the newest first; the lines go oldest first.
	[array]::Reverse($found)
	foreach ($e in $found) {
		$x = [xml]$e.ToXml()
		$user = Get-PassportEventData $x 'TargetUserName'
		$domain = Get-PassportEventData $x 'TargetDomainName'
		$logon = Get-PassportEventData $x 'TargetLogonId'
		if ($e.Id -eq 4688) {
			# The creator's logon is the person's session.
			$user = Get-PassportEventData $x 'SubjectUserName'
			$domain = Get-PassportEventData $x 'SubjectDomainName'
			$logon = Get-PassportEventData $x 'SubjectLogonId'
		}
		if ($user -ne $name -or $domain -ne $env:COMPUTERNAME) { continue }
		$line = [ordered]@{
			time       = $e.TimeCreated.ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ss.fffZ', [System.Globalization.CultureInfo]::InvariantCulture)
			event_id   = $e.Id
			logon_id   = $logon.ToLowerInvariant()
		}
		$type = Get-PassportEventData $x 'LogonType'
		if ($type -cmatch '^[0-9]{1,2}\z') { $line['logon_type'] = [int]$type }
		$source = Get-PassportEventData $x 'IpAddress'
		if ($source -ne '' -and $source -ne '-') { $line['source'] = $source }
		if ($e.Id -eq 4688) {
			$line['process'] = Get-PassportEventData $x 'NewProcessName'
			$cmd = Get-PassportEventData $x 'CommandLine'
			if ($cmd -ne '') { $line['command_line'] = $cmd }
		}
		$out.WriteLine((ConvertTo-Json -InputObject $line -Compress))
		$logons[$line['logon_id']] = $true
		$count++
	}
	$out.Flush()
	Write-PassportResult 'ok' @(('user=' + $name), ('events=' + $count), ('sessions=' + $logons.Count))
}
