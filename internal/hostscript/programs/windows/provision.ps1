# ---- provision.ps1 ----------------------------------------------------------
# New-PassportPassword draws DefaultLength characters from the alphabet with
# rejection sampling (no modulo bias) until every class is present and the
# username is absent.
function New-PassportPassword([string]$Name) {
	$rng = New-Object System.Security.Cryptography.RNGCryptoServiceProvider
	$n = $PassportAlphabet.Length
	$limit = 256 - (256 % $n)
	$buf = New-Object byte[] 1
	try {
		for ($attempt = 0; $attempt -lt 100; $attempt++) {
			$sb = New-Object System.Text.StringBuilder
			while ($sb.Length -lt 28) {
				$rng.GetBytes($buf)
				if ($buf[0] -lt $limit) { [void]$sb.Append($PassportAlphabet[$buf[0] % $n]) }
			}
			$pw = $sb.ToString()
			if (-not ($pw -cmatch '[A-Z]')) { continue }
			if (-not ($pw -cmatch '[a-z]')) { continue }
			if (-not ($pw -cmatch '[0-9]')) { continue }
			if (-not ($pw -cmatch '[!#*+./?@_~-]')) { continue }
			if ($Name.Length -ge 3 -and $pw.ToLowerInvariant().Contains($Name)) { continue }
			return $pw
		}
	} finally {
		$rng.Dispose()
	}
	Stop-Passport $ExFailed 'could not draw a password with every character class'
}

function ConvertFrom-PassportBase64Url([string]$Value) {
	$s = $Value.Replace('-', '+').Replace('_', '/')
	while ($s.Length % 4 -ne 0) { $s = $s + '=' }
	return [System.Convert]::FromBase64String($s)
}

# Protect-PassportPassword encrypts the password to the grant's key with
# RSA-OAEP(SHA-256) and returns unpadded base64url.
function Protect-PassportPassword([string]$Password, [string]$N, [string]$E) {
	$p = New-Object System.Security.Cryptography.RSAParameters
	$p.Modulus = ConvertFrom-PassportBase64Url $N
	$p.Exponent = ConvertFrom-PassportBase64Url $E
	if ($p.Modulus.Length -lt 384 -or $p.Modulus.Length -gt 1024 -or $p.Modulus[0] -eq 0) { Stop-Passport $ExData 'field seal_n is not a modulus of 3072 to 8192 bits' }
	$rsa = New-Object System.Security.Cryptography.RSACng
	try {
		$rsa.ImportParameters($p)
		$ct = $rsa.Encrypt([System.Text.Encoding]::UTF8.GetBytes($Password), [System.Security.Cryptography.RSAEncryptionPadding]::OaepSHA256)
	} finally {
		$rsa.Dispose()
	}
	return [System.Convert]::ToBase64String($ct).TrimEnd('=').Replace('+', '-').Replace('/', '_')
}

function Install-PassportSweep {
	$script:Step = 'sweep'
	if (-not (Test-Path -LiteralPath $PassportDir)) { New-Item -ItemType Directory -Path $PassportDir | Out-Null }
	# Only SYSTEM and Administrators may change what the task runs.
	$acl = New-Object System.Security.AccessControl.DirectorySecurity
	$acl.SetAccessRuleProtection($true, $false)
	foreach ($sid in @($SidSystem, $SidAdministrators)) {
		$who = New-Object System.Security.Principal.SecurityIdentifier($sid)
		$rule = New-Object System.Security.AccessControl.FileSystemAccessRule($who, 'FullControl', 'ContainerInherit,ObjectInherit', 'None', 'Allow')
		$acl.AddAccessRule($rule)
	}
	Set-Acl -LiteralPath $PassportDir -AclObject $acl
	[System.IO.File]::WriteAllText($PassportSweepPath, $PassportSweepProgram, (New-Object System.Text.UTF8Encoding($false)))
	$action = New-ScheduledTaskAction -Execute 'powershell.exe' -Argument ('-NoProfile -NonInteractive -ExecutionPolicy Bypass -File "' + $PassportSweepPath + '"')
	$trigger = New-ScheduledTaskTrigger -Once -At (Get-Date) -RepetitionInterval (New-TimeSpan -Minutes 1)
	$principal = New-ScheduledTaskPrincipal -UserId 'SYSTEM' -LogonType ServiceAccount -RunLevel Highest
	Register-ScheduledTask -TaskName $PassportTask -Action $action -Trigger $trigger -Principal $principal -Force | Out-Null
}

# Enable-PassportAudit turns on what the collect program reads: success
# auditing of Logon, Logoff and Process Creation (by subcategory GUID: the
# names are localized), and command lines in process creation events. It
# changes the host's audit policy for everyone, as an auditor would want;
# a domain's Group Policy may set it back, and then collect finds less.
function Enable-PassportAudit {
	$script:Step = 'audit'
	foreach ($sub in @('{0CCE9215-69AE-11D9-BED3-505054503030}', '{0CCE9216-69AE-11D9-BED3-505054503030}', '{0CCE922B-69AE-11D9-BED3-505054503030}')) {
		& auditpol.exe /set ('/subcategory:' + $sub) /success:enable | Out-Null
		# The grant stands without it: collection then finds fewer events.
		if ($LASTEXITCODE -ne 0) { [Console]::Error.WriteLine('passport: provision: auditpol could not turn on logon and process creation auditing') }
	}
	$audit = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System\Audit'
	if (-not (Test-Path -LiteralPath $audit)) { New-Item -Path $audit -Force | Out-Null }
	New-ItemProperty -LiteralPath $audit -Name 'ProcessCreationIncludeCmdLine_Enabled' -Value 1 -PropertyType DWord -Force | Out-Null
}

function Invoke-PassportAction {
	$f = Read-PassportData @('action', 'user', 'request', 'requester', 'expires', 'admin', 'seal_n', 'seal_e') @('provision', $ReUser, $ReRequest, $ReRequester, $ReEpoch, $ReBool, $ReSealN, $ReSealE)
	$name = $f['user']
	$expires = ConvertFrom-PassportEpoch $f['expires']
	Assert-NotDomainController
	$changed = @()

	$script:Step = 'group'
	$group = Get-LocalGroup | Where-Object { $_.Name -eq $PassportGroup } | Select-Object -First 1
	if ($null -eq $group) {
		if (-not (Test-Path -LiteralPath $PassportKey)) { New-Item -Path $PassportKey -Force | Out-Null }
		New-LocalGroup -Name $PassportGroup -Description $PassportGroupDescription | Out-Null
		New-ItemProperty -Path $PassportKey -Name 'GroupCreated' -Value 1 -PropertyType DWord -Force | Out-Null
		$changed += 'group'
	} elseif (-not (Test-PassportGroupOwned)) {
		Stop-Passport $ExConflict ('a local group named ' + $PassportGroup + ' exists that Passport did not create; rename it or remove it')
	}

	$script:Step = 'check'
	$user = Get-PassportUser $name
	$record = Get-PassportRecord $name
	if ($null -ne $user) {
		if (-not (Test-PassportMember $user)) { Stop-Passport $ExConflict 'the user exists and is not a Passport user; left alone' }
		if ((Get-PassportRecordValue $record 'request') -cne $f['request']) { Stop-Passport $ExConflict 'the user belongs to another Passport grant; left alone' }
	}

	$script:Step = 'password'
	$pw = New-PassportPassword $name
	$secure = ConvertTo-SecureString -String $pw -AsPlainText -Force
	$sealed = Protect-PassportPassword $pw $f['seal_n'] $f['seal_e']
	$pw = $null

	try {
		if ($null -eq $user) {
			$script:Step = 'user'
			$user = New-LocalUser -Name $name -Password $secure -AccountExpires $expires -PasswordNeverExpires -UserMayNotChangePassword -Description 'Passport short-lived user'
			$changed += 'user'
		} else {
			$script:Step = 'password'
			Set-LocalUser -SID $user.SID -Password $secure -AccountExpires $expires
			$changed += 'password'
		}
	} catch [Microsoft.PowerShell.Commands.InvalidPasswordException] {
		Stop-Passport $ExPassword 'the host password policy refused the generated password (28 characters, all four classes); check Minimum password length and custom password filters'
	}

	$script:Step = 'groups'
	$groups = @(
		@{ Group = (Get-LocalGroup -Name $PassportGroup); Want = $true; Tag = 'passport-group' },
		@{ Group = (Get-LocalGroup -SID $SidRemoteDesktopUsers); Want = $true; Tag = 'remote-desktop' },
		@{ Group = (Get-LocalGroup -SID $SidAdministrators); Want = ($f['admin'] -eq '1'); Tag = 'administrators' }
	)
	foreach ($g in $groups) {
		$m = @(Get-LocalGroupMember -Group $g.Group | Where-Object { $_.SID -eq $user.SID })
		if ($g.Want -and $m.Count -eq 0) {
			Add-LocalGroupMember -Group $g.Group -Member $user
			$changed += $g.Tag
		} elseif (-not $g.Want -and $m.Count -gt 0) {
			Remove-LocalGroupMember -Group $g.Group -Member $user
			$changed += $g.Tag
		}
	}

	$script:Step = 'record'
	$path = $PassportGrants + '\' + $name
	if (-not (Test-Path -LiteralPath $path)) { New-Item -Path $path -Force | Out-Null; $changed += 'record' }
	New-ItemProperty -LiteralPath $path -Name 'request' -Value $f['request'] -PropertyType String -Force | Out-Null
	New-ItemProperty -LiteralPath $path -Name 'requester' -Value $f['requester'] -PropertyType String -Force | Out-Null
	New-ItemProperty -LiteralPath $path -Name 'expires' -Value $f['expires'] -PropertyType String -Force | Out-Null

	Install-PassportSweep
	Enable-PassportAudit

	$c = 'none'
	if ($changed.Count -gt 0) { $c = ($changed | Select-Object -Unique) -join ',' }
	Write-PassportResult 'ok' @(('user=' + $name), ('changed=' + $c), ('password=' + $sealed))
}
