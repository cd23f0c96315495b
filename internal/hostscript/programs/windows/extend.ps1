# ---- extend.ps1 -------------------------------------------------------------
function Invoke-PassportAction {
	$f = Read-PassportData @('action', 'user', 'expires') @('extend', $ReUser, $ReEpoch)
	$name = $f['user']
	$expires = ConvertFrom-PassportEpoch $f['expires']
	Assert-NotDomainController
	$script:Step = 'check'
	$user = Get-PassportUser $name
	if ($null -eq $user) { Stop-Passport $ExNotFound 'no such Passport user' }
	if (-not (Test-PassportMember $user)) { Stop-Passport $ExConflict 'the user is not a Passport user; left alone' }
	$record = Get-PassportRecord $name
	if ($null -eq $record) { Stop-Passport $ExNotFound 'the user has no Passport grant record' }
	$script:Step = 'user'
	Set-LocalUser -SID $user.SID -AccountExpires $expires
	$script:Step = 'record'
	New-ItemProperty -LiteralPath ($PassportGrants + '\' + $name) -Name 'expires' -Value $f['expires'] -PropertyType String -Force | Out-Null
	Write-PassportResult 'ok' @(('user=' + $name), 'changed=expiry,record')
}
