# ---- revoke.ps1 -------------------------------------------------------------
function Invoke-PassportAction {
	$f = Read-PassportData @('action', 'user') @('revoke', $ReUser)
	$name = $f['user']
	Assert-NotDomainController
	$script:Step = 'check'
	$user = Get-PassportUser $name
	if ($null -ne $user -and -not (Test-PassportMember $user)) { Stop-Passport $ExConflict 'the user is not a Passport user; left alone' }
	$present = 'no'
	if ($null -ne $user -or $null -ne (Get-PassportRecord $name)) { $present = 'yes' }
	Remove-PassportUser $user $name
	Write-PassportResult 'ok' @(('user=' + $name), ('removed=' + $present))
}
